//! Every JSON request body of the API, decoded as its route's handler decodes it: arbitrary bytes are a
//! 4xx problem or a decoded body, never a 5xx or a panic. The first byte picks the route.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let routes = shedu_server::api::json_bodies();
    let route = &routes[usize::from(pick) % routes.len()];
    if let Err(problem) = route.decode(body) {
        assert!(
            (400..500).contains(&problem.status),
            "{} {}: {} {}",
            route.method,
            route.path,
            problem.status,
            problem.detail
        );
    }
});
