//! Names and numbers of the KMIP tags and enumerations (OASIS KMIP 1.0–2.1 specifications, §9 / §11).
//! Generated once from the specification's tables; names are the specification's with spaces and
//! punctuation removed, as the JSON TTLV form writes them.

/// Every tag of KMIP 1.0–2.1, by number.
pub mod tag {
    /// `ActivationDate`
    pub const ACTIVATION_DATE: u32 = 0x420001;
    /// `ApplicationData`
    pub const APPLICATION_DATA: u32 = 0x420002;
    /// `ApplicationNamespace`
    pub const APPLICATION_NAMESPACE: u32 = 0x420003;
    /// `ApplicationSpecificInformation`
    pub const APPLICATION_SPECIFIC_INFORMATION: u32 = 0x420004;
    /// `ArchiveDate`
    pub const ARCHIVE_DATE: u32 = 0x420005;
    /// `AsynchronousCorrelationValue`
    pub const ASYNCHRONOUS_CORRELATION_VALUE: u32 = 0x420006;
    /// `AsynchronousIndicator`
    pub const ASYNCHRONOUS_INDICATOR: u32 = 0x420007;
    /// `Attribute`
    pub const ATTRIBUTE: u32 = 0x420008;
    /// `AttributeIndex`
    pub const ATTRIBUTE_INDEX: u32 = 0x420009;
    /// `AttributeName`
    pub const ATTRIBUTE_NAME: u32 = 0x42000A;
    /// `AttributeValue`
    pub const ATTRIBUTE_VALUE: u32 = 0x42000B;
    /// `Authentication`
    pub const AUTHENTICATION: u32 = 0x42000C;
    /// `BatchCount`
    pub const BATCH_COUNT: u32 = 0x42000D;
    /// `BatchErrorContinuationOption`
    pub const BATCH_ERROR_CONTINUATION_OPTION: u32 = 0x42000E;
    /// `BatchItem`
    pub const BATCH_ITEM: u32 = 0x42000F;
    /// `BatchOrderOption`
    pub const BATCH_ORDER_OPTION: u32 = 0x420010;
    /// `BlockCipherMode`
    pub const BLOCK_CIPHER_MODE: u32 = 0x420011;
    /// `CancellationResult`
    pub const CANCELLATION_RESULT: u32 = 0x420012;
    /// `Certificate`
    pub const CERTIFICATE: u32 = 0x420013;
    /// `CertificateIdentifier`
    pub const CERTIFICATE_IDENTIFIER: u32 = 0x420014;
    /// `CertificateIssuer`
    pub const CERTIFICATE_ISSUER: u32 = 0x420015;
    /// `CertificateIssuerAlternativeName`
    pub const CERTIFICATE_ISSUER_ALTERNATIVE_NAME: u32 = 0x420016;
    /// `CertificateIssuerDistinguishedName`
    pub const CERTIFICATE_ISSUER_DISTINGUISHED_NAME: u32 = 0x420017;
    /// `CertificateRequest`
    pub const CERTIFICATE_REQUEST: u32 = 0x420018;
    /// `CertificateRequestType`
    pub const CERTIFICATE_REQUEST_TYPE: u32 = 0x420019;
    /// `CertificateSubject`
    pub const CERTIFICATE_SUBJECT: u32 = 0x42001A;
    /// `CertificateSubjectAlternativeName`
    pub const CERTIFICATE_SUBJECT_ALTERNATIVE_NAME: u32 = 0x42001B;
    /// `CertificateSubjectDistinguishedName`
    pub const CERTIFICATE_SUBJECT_DISTINGUISHED_NAME: u32 = 0x42001C;
    /// `CertificateType`
    pub const CERTIFICATE_TYPE: u32 = 0x42001D;
    /// `CertificateValue`
    pub const CERTIFICATE_VALUE: u32 = 0x42001E;
    /// `CommonTemplateAttribute`
    pub const COMMON_TEMPLATE_ATTRIBUTE: u32 = 0x42001F;
    /// `CompromiseDate`
    pub const COMPROMISE_DATE: u32 = 0x420020;
    /// `CompromiseOccurrenceDate`
    pub const COMPROMISE_OCCURRENCE_DATE: u32 = 0x420021;
    /// `ContactInformation`
    pub const CONTACT_INFORMATION: u32 = 0x420022;
    /// `Credential`
    pub const CREDENTIAL: u32 = 0x420023;
    /// `CredentialType`
    pub const CREDENTIAL_TYPE: u32 = 0x420024;
    /// `CredentialValue`
    pub const CREDENTIAL_VALUE: u32 = 0x420025;
    /// `CriticalityIndicator`
    pub const CRITICALITY_INDICATOR: u32 = 0x420026;
    /// `CRTCoefficient`
    pub const CRT_COEFFICIENT: u32 = 0x420027;
    /// `CryptographicAlgorithm`
    pub const CRYPTOGRAPHIC_ALGORITHM: u32 = 0x420028;
    /// `CryptographicDomainParameters`
    pub const CRYPTOGRAPHIC_DOMAIN_PARAMETERS: u32 = 0x420029;
    /// `CryptographicLength`
    pub const CRYPTOGRAPHIC_LENGTH: u32 = 0x42002A;
    /// `CryptographicParameters`
    pub const CRYPTOGRAPHIC_PARAMETERS: u32 = 0x42002B;
    /// `CryptographicUsageMask`
    pub const CRYPTOGRAPHIC_USAGE_MASK: u32 = 0x42002C;
    /// `CustomAttribute`
    pub const CUSTOM_ATTRIBUTE: u32 = 0x42002D;
    /// `D`
    pub const D: u32 = 0x42002E;
    /// `DeactivationDate`
    pub const DEACTIVATION_DATE: u32 = 0x42002F;
    /// `DerivationData`
    pub const DERIVATION_DATA: u32 = 0x420030;
    /// `DerivationMethod`
    pub const DERIVATION_METHOD: u32 = 0x420031;
    /// `DerivationParameters`
    pub const DERIVATION_PARAMETERS: u32 = 0x420032;
    /// `DestroyDate`
    pub const DESTROY_DATE: u32 = 0x420033;
    /// `Digest`
    pub const DIGEST: u32 = 0x420034;
    /// `DigestValue`
    pub const DIGEST_VALUE: u32 = 0x420035;
    /// `EncryptionKeyInformation`
    pub const ENCRYPTION_KEY_INFORMATION: u32 = 0x420036;
    /// `G`
    pub const G: u32 = 0x420037;
    /// `HashingAlgorithm`
    pub const HASHING_ALGORITHM: u32 = 0x420038;
    /// `InitialDate`
    pub const INITIAL_DATE: u32 = 0x420039;
    /// `InitializationVector`
    pub const INITIALIZATION_VECTOR: u32 = 0x42003A;
    /// `Issuer`
    pub const ISSUER: u32 = 0x42003B;
    /// `IterationCount`
    pub const ITERATION_COUNT: u32 = 0x42003C;
    /// `IVCounterNonce`
    pub const IV_COUNTER_NONCE: u32 = 0x42003D;
    /// `J`
    pub const J: u32 = 0x42003E;
    /// `Key`
    pub const KEY: u32 = 0x42003F;
    /// `KeyBlock`
    pub const KEY_BLOCK: u32 = 0x420040;
    /// `KeyCompressionType`
    pub const KEY_COMPRESSION_TYPE: u32 = 0x420041;
    /// `KeyFormatType`
    pub const KEY_FORMAT_TYPE: u32 = 0x420042;
    /// `KeyMaterial`
    pub const KEY_MATERIAL: u32 = 0x420043;
    /// `KeyPartIdentifier`
    pub const KEY_PART_IDENTIFIER: u32 = 0x420044;
    /// `KeyValue`
    pub const KEY_VALUE: u32 = 0x420045;
    /// `KeyWrappingData`
    pub const KEY_WRAPPING_DATA: u32 = 0x420046;
    /// `KeyWrappingSpecification`
    pub const KEY_WRAPPING_SPECIFICATION: u32 = 0x420047;
    /// `LastChangeDate`
    pub const LAST_CHANGE_DATE: u32 = 0x420048;
    /// `LeaseTime`
    pub const LEASE_TIME: u32 = 0x420049;
    /// `Link`
    pub const LINK: u32 = 0x42004A;
    /// `LinkType`
    pub const LINK_TYPE: u32 = 0x42004B;
    /// `LinkedObjectIdentifier`
    pub const LINKED_OBJECT_IDENTIFIER: u32 = 0x42004C;
    /// `MACSignature`
    pub const MAC_SIGNATURE: u32 = 0x42004D;
    /// `MACSignatureKeyInformation`
    pub const MAC_SIGNATURE_KEY_INFORMATION: u32 = 0x42004E;
    /// `MaximumItems`
    pub const MAXIMUM_ITEMS: u32 = 0x42004F;
    /// `MaximumResponseSize`
    pub const MAXIMUM_RESPONSE_SIZE: u32 = 0x420050;
    /// `MessageExtension`
    pub const MESSAGE_EXTENSION: u32 = 0x420051;
    /// `Modulus`
    pub const MODULUS: u32 = 0x420052;
    /// `Name`
    pub const NAME: u32 = 0x420053;
    /// `NameType`
    pub const NAME_TYPE: u32 = 0x420054;
    /// `NameValue`
    pub const NAME_VALUE: u32 = 0x420055;
    /// `ObjectGroup`
    pub const OBJECT_GROUP: u32 = 0x420056;
    /// `ObjectType`
    pub const OBJECT_TYPE: u32 = 0x420057;
    /// `Offset`
    pub const OFFSET: u32 = 0x420058;
    /// `OpaqueDataType`
    pub const OPAQUE_DATA_TYPE: u32 = 0x420059;
    /// `OpaqueDataValue`
    pub const OPAQUE_DATA_VALUE: u32 = 0x42005A;
    /// `OpaqueObject`
    pub const OPAQUE_OBJECT: u32 = 0x42005B;
    /// `Operation`
    pub const OPERATION: u32 = 0x42005C;
    /// `OperationPolicyName`
    pub const OPERATION_POLICY_NAME: u32 = 0x42005D;
    /// `P`
    pub const P: u32 = 0x42005E;
    /// `PaddingMethod`
    pub const PADDING_METHOD: u32 = 0x42005F;
    /// `PrimeExponentP`
    pub const PRIME_EXPONENT_P: u32 = 0x420060;
    /// `PrimeExponentQ`
    pub const PRIME_EXPONENT_Q: u32 = 0x420061;
    /// `PrimeFieldSize`
    pub const PRIME_FIELD_SIZE: u32 = 0x420062;
    /// `PrivateExponent`
    pub const PRIVATE_EXPONENT: u32 = 0x420063;
    /// `PrivateKey`
    pub const PRIVATE_KEY: u32 = 0x420064;
    /// `PrivateKeyTemplateAttribute`
    pub const PRIVATE_KEY_TEMPLATE_ATTRIBUTE: u32 = 0x420065;
    /// `PrivateKeyUniqueIdentifier`
    pub const PRIVATE_KEY_UNIQUE_IDENTIFIER: u32 = 0x420066;
    /// `ProcessStartDate`
    pub const PROCESS_START_DATE: u32 = 0x420067;
    /// `ProtectStopDate`
    pub const PROTECT_STOP_DATE: u32 = 0x420068;
    /// `ProtocolVersion`
    pub const PROTOCOL_VERSION: u32 = 0x420069;
    /// `ProtocolVersionMajor`
    pub const PROTOCOL_VERSION_MAJOR: u32 = 0x42006A;
    /// `ProtocolVersionMinor`
    pub const PROTOCOL_VERSION_MINOR: u32 = 0x42006B;
    /// `PublicExponent`
    pub const PUBLIC_EXPONENT: u32 = 0x42006C;
    /// `PublicKey`
    pub const PUBLIC_KEY: u32 = 0x42006D;
    /// `PublicKeyTemplateAttribute`
    pub const PUBLIC_KEY_TEMPLATE_ATTRIBUTE: u32 = 0x42006E;
    /// `PublicKeyUniqueIdentifier`
    pub const PUBLIC_KEY_UNIQUE_IDENTIFIER: u32 = 0x42006F;
    /// `PutFunction`
    pub const PUT_FUNCTION: u32 = 0x420070;
    /// `Q`
    pub const Q: u32 = 0x420071;
    /// `QString`
    pub const Q_STRING: u32 = 0x420072;
    /// `Qlength`
    pub const QLENGTH: u32 = 0x420073;
    /// `QueryFunction`
    pub const QUERY_FUNCTION: u32 = 0x420074;
    /// `RecommendedCurve`
    pub const RECOMMENDED_CURVE: u32 = 0x420075;
    /// `ReplacedUniqueIdentifier`
    pub const REPLACED_UNIQUE_IDENTIFIER: u32 = 0x420076;
    /// `RequestHeader`
    pub const REQUEST_HEADER: u32 = 0x420077;
    /// `RequestMessage`
    pub const REQUEST_MESSAGE: u32 = 0x420078;
    /// `RequestPayload`
    pub const REQUEST_PAYLOAD: u32 = 0x420079;
    /// `ResponseHeader`
    pub const RESPONSE_HEADER: u32 = 0x42007A;
    /// `ResponseMessage`
    pub const RESPONSE_MESSAGE: u32 = 0x42007B;
    /// `ResponsePayload`
    pub const RESPONSE_PAYLOAD: u32 = 0x42007C;
    /// `ResultMessage`
    pub const RESULT_MESSAGE: u32 = 0x42007D;
    /// `ResultReason`
    pub const RESULT_REASON: u32 = 0x42007E;
    /// `ResultStatus`
    pub const RESULT_STATUS: u32 = 0x42007F;
    /// `RevocationMessage`
    pub const REVOCATION_MESSAGE: u32 = 0x420080;
    /// `RevocationReason`
    pub const REVOCATION_REASON: u32 = 0x420081;
    /// `RevocationReasonCode`
    pub const REVOCATION_REASON_CODE: u32 = 0x420082;
    /// `KeyRoleType`
    pub const KEY_ROLE_TYPE: u32 = 0x420083;
    /// `Salt`
    pub const SALT: u32 = 0x420084;
    /// `SecretData`
    pub const SECRET_DATA: u32 = 0x420085;
    /// `SecretDataType`
    pub const SECRET_DATA_TYPE: u32 = 0x420086;
    /// `SerialNumber`
    pub const SERIAL_NUMBER: u32 = 0x420087;
    /// `ServerInformation`
    pub const SERVER_INFORMATION: u32 = 0x420088;
    /// `SplitKey`
    pub const SPLIT_KEY: u32 = 0x420089;
    /// `SplitKeyMethod`
    pub const SPLIT_KEY_METHOD: u32 = 0x42008A;
    /// `SplitKeyParts`
    pub const SPLIT_KEY_PARTS: u32 = 0x42008B;
    /// `SplitKeyThreshold`
    pub const SPLIT_KEY_THRESHOLD: u32 = 0x42008C;
    /// `State`
    pub const STATE: u32 = 0x42008D;
    /// `StorageStatusMask`
    pub const STORAGE_STATUS_MASK: u32 = 0x42008E;
    /// `SymmetricKey`
    pub const SYMMETRIC_KEY: u32 = 0x42008F;
    /// `Template`
    pub const TEMPLATE: u32 = 0x420090;
    /// `TemplateAttribute`
    pub const TEMPLATE_ATTRIBUTE: u32 = 0x420091;
    /// `TimeStamp`
    pub const TIME_STAMP: u32 = 0x420092;
    /// `UniqueBatchItemID`
    pub const UNIQUE_BATCH_ITEM_ID: u32 = 0x420093;
    /// `UniqueIdentifier`
    pub const UNIQUE_IDENTIFIER: u32 = 0x420094;
    /// `UsageLimits`
    pub const USAGE_LIMITS: u32 = 0x420095;
    /// `UsageLimitsCount`
    pub const USAGE_LIMITS_COUNT: u32 = 0x420096;
    /// `UsageLimitsTotal`
    pub const USAGE_LIMITS_TOTAL: u32 = 0x420097;
    /// `UsageLimitsUnit`
    pub const USAGE_LIMITS_UNIT: u32 = 0x420098;
    /// `Username`
    pub const USERNAME: u32 = 0x420099;
    /// `ValidityDate`
    pub const VALIDITY_DATE: u32 = 0x42009A;
    /// `ValidityIndicator`
    pub const VALIDITY_INDICATOR: u32 = 0x42009B;
    /// `VendorExtension`
    pub const VENDOR_EXTENSION: u32 = 0x42009C;
    /// `VendorIdentification`
    pub const VENDOR_IDENTIFICATION: u32 = 0x42009D;
    /// `WrappingMethod`
    pub const WRAPPING_METHOD: u32 = 0x42009E;
    /// `X`
    pub const X: u32 = 0x42009F;
    /// `Y`
    pub const Y: u32 = 0x4200A0;
    /// `Password`
    pub const PASSWORD: u32 = 0x4200A1;
    /// `DeviceIdentifier`
    pub const DEVICE_IDENTIFIER: u32 = 0x4200A2;
    /// `EncodingOption`
    pub const ENCODING_OPTION: u32 = 0x4200A3;
    /// `ExtensionInformation`
    pub const EXTENSION_INFORMATION: u32 = 0x4200A4;
    /// `ExtensionName`
    pub const EXTENSION_NAME: u32 = 0x4200A5;
    /// `ExtensionTag`
    pub const EXTENSION_TAG: u32 = 0x4200A6;
    /// `ExtensionType`
    pub const EXTENSION_TYPE: u32 = 0x4200A7;
    /// `Fresh`
    pub const FRESH: u32 = 0x4200A8;
    /// `MachineIdentifier`
    pub const MACHINE_IDENTIFIER: u32 = 0x4200A9;
    /// `MediaIdentifier`
    pub const MEDIA_IDENTIFIER: u32 = 0x4200AA;
    /// `NetworkIdentifier`
    pub const NETWORK_IDENTIFIER: u32 = 0x4200AB;
    /// `ObjectGroupMember`
    pub const OBJECT_GROUP_MEMBER: u32 = 0x4200AC;
    /// `CertificateLength`
    pub const CERTIFICATE_LENGTH: u32 = 0x4200AD;
    /// `DigitalSignatureAlgorithm`
    pub const DIGITAL_SIGNATURE_ALGORITHM: u32 = 0x4200AE;
    /// `CertificateSerialNumber`
    pub const CERTIFICATE_SERIAL_NUMBER: u32 = 0x4200AF;
    /// `DeviceSerialNumber`
    pub const DEVICE_SERIAL_NUMBER: u32 = 0x4200B0;
    /// `IssuerAlternativeName`
    pub const ISSUER_ALTERNATIVE_NAME: u32 = 0x4200B1;
    /// `IssuerDistinguishedName`
    pub const ISSUER_DISTINGUISHED_NAME: u32 = 0x4200B2;
    /// `SubjectAlternativeName`
    pub const SUBJECT_ALTERNATIVE_NAME: u32 = 0x4200B3;
    /// `SubjectDistinguishedName`
    pub const SUBJECT_DISTINGUISHED_NAME: u32 = 0x4200B4;
    /// `X509CertificateIdentifier`
    pub const X_509_CERTIFICATE_IDENTIFIER: u32 = 0x4200B5;
    /// `X509CertificateIssuer`
    pub const X_509_CERTIFICATE_ISSUER: u32 = 0x4200B6;
    /// `X509CertificateSubject`
    pub const X_509_CERTIFICATE_SUBJECT: u32 = 0x4200B7;
    /// `KeyValueLocation`
    pub const KEY_VALUE_LOCATION: u32 = 0x4200B8;
    /// `KeyValueLocationValue`
    pub const KEY_VALUE_LOCATION_VALUE: u32 = 0x4200B9;
    /// `KeyValueLocationType`
    pub const KEY_VALUE_LOCATION_TYPE: u32 = 0x4200BA;
    /// `KeyValuePresent`
    pub const KEY_VALUE_PRESENT: u32 = 0x4200BB;
    /// `OriginalCreationDate`
    pub const ORIGINAL_CREATION_DATE: u32 = 0x4200BC;
    /// `PGPKey`
    pub const PGP_KEY: u32 = 0x4200BD;
    /// `PGPKeyVersion`
    pub const PGP_KEY_VERSION: u32 = 0x4200BE;
    /// `AlternativeName`
    pub const ALTERNATIVE_NAME: u32 = 0x4200BF;
    /// `AlternativeNameValue`
    pub const ALTERNATIVE_NAME_VALUE: u32 = 0x4200C0;
    /// `AlternativeNameType`
    pub const ALTERNATIVE_NAME_TYPE: u32 = 0x4200C1;
    /// `Data`
    pub const DATA: u32 = 0x4200C2;
    /// `SignatureData`
    pub const SIGNATURE_DATA: u32 = 0x4200C3;
    /// `DataLength`
    pub const DATA_LENGTH: u32 = 0x4200C4;
    /// `RandomIV`
    pub const RANDOM_IV: u32 = 0x4200C5;
    /// `MACData`
    pub const MAC_DATA: u32 = 0x4200C6;
    /// `AttestationType`
    pub const ATTESTATION_TYPE: u32 = 0x4200C7;
    /// `Nonce`
    pub const NONCE: u32 = 0x4200C8;
    /// `NonceID`
    pub const NONCE_ID: u32 = 0x4200C9;
    /// `NonceValue`
    pub const NONCE_VALUE: u32 = 0x4200CA;
    /// `AttestationMeasurement`
    pub const ATTESTATION_MEASUREMENT: u32 = 0x4200CB;
    /// `AttestationAssertion`
    pub const ATTESTATION_ASSERTION: u32 = 0x4200CC;
    /// `IVLength`
    pub const IV_LENGTH: u32 = 0x4200CD;
    /// `TagLength`
    pub const TAG_LENGTH: u32 = 0x4200CE;
    /// `FixedFieldLength`
    pub const FIXED_FIELD_LENGTH: u32 = 0x4200CF;
    /// `CounterLength`
    pub const COUNTER_LENGTH: u32 = 0x4200D0;
    /// `InitialCounterValue`
    pub const INITIAL_COUNTER_VALUE: u32 = 0x4200D1;
    /// `InvocationFieldLength`
    pub const INVOCATION_FIELD_LENGTH: u32 = 0x4200D2;
    /// `AttestationCapableIndicator`
    pub const ATTESTATION_CAPABLE_INDICATOR: u32 = 0x4200D3;
    /// `OffsetItems`
    pub const OFFSET_ITEMS: u32 = 0x4200D4;
    /// `LocatedItems`
    pub const LOCATED_ITEMS: u32 = 0x4200D5;
    /// `CorrelationValue`
    pub const CORRELATION_VALUE: u32 = 0x4200D6;
    /// `InitIndicator`
    pub const INIT_INDICATOR: u32 = 0x4200D7;
    /// `FinalIndicator`
    pub const FINAL_INDICATOR: u32 = 0x4200D8;
    /// `RNGParameters`
    pub const RNG_PARAMETERS: u32 = 0x4200D9;
    /// `RNGAlgorithm`
    pub const RNG_ALGORITHM: u32 = 0x4200DA;
    /// `DRBGAlgorithm`
    pub const DRBG_ALGORITHM: u32 = 0x4200DB;
    /// `Fips186Variation`
    pub const FIPS186_VARIATION: u32 = 0x4200DC;
    /// `PredictionResistance`
    pub const PREDICTION_RESISTANCE: u32 = 0x4200DD;
    /// `RandomNumberGenerator`
    pub const RANDOM_NUMBER_GENERATOR: u32 = 0x4200DE;
    /// `ValidationInformation`
    pub const VALIDATION_INFORMATION: u32 = 0x4200DF;
    /// `ValidationAuthorityType`
    pub const VALIDATION_AUTHORITY_TYPE: u32 = 0x4200E0;
    /// `ValidationAuthorityCountry`
    pub const VALIDATION_AUTHORITY_COUNTRY: u32 = 0x4200E1;
    /// `ValidationAuthorityURI`
    pub const VALIDATION_AUTHORITY_URI: u32 = 0x4200E2;
    /// `ValidationVersionMajor`
    pub const VALIDATION_VERSION_MAJOR: u32 = 0x4200E3;
    /// `ValidationVersionMinor`
    pub const VALIDATION_VERSION_MINOR: u32 = 0x4200E4;
    /// `ValidationType`
    pub const VALIDATION_TYPE: u32 = 0x4200E5;
    /// `ValidationLevel`
    pub const VALIDATION_LEVEL: u32 = 0x4200E6;
    /// `ValidationCertificateIdentifier`
    pub const VALIDATION_CERTIFICATE_IDENTIFIER: u32 = 0x4200E7;
    /// `ValidationCertificateURI`
    pub const VALIDATION_CERTIFICATE_URI: u32 = 0x4200E8;
    /// `ValidationVendorURI`
    pub const VALIDATION_VENDOR_URI: u32 = 0x4200E9;
    /// `ValidationProfile`
    pub const VALIDATION_PROFILE: u32 = 0x4200EA;
    /// `ProfileInformation`
    pub const PROFILE_INFORMATION: u32 = 0x4200EB;
    /// `ProfileName`
    pub const PROFILE_NAME: u32 = 0x4200EC;
    /// `ServerURI`
    pub const SERVER_URI: u32 = 0x4200ED;
    /// `ServerPort`
    pub const SERVER_PORT: u32 = 0x4200EE;
    /// `StreamingCapability`
    pub const STREAMING_CAPABILITY: u32 = 0x4200EF;
    /// `AsynchronousCapability`
    pub const ASYNCHRONOUS_CAPABILITY: u32 = 0x4200F0;
    /// `AttestationCapability`
    pub const ATTESTATION_CAPABILITY: u32 = 0x4200F1;
    /// `UnwrapMode`
    pub const UNWRAP_MODE: u32 = 0x4200F2;
    /// `DestroyAction`
    pub const DESTROY_ACTION: u32 = 0x4200F3;
    /// `ShreddingAlgorithm`
    pub const SHREDDING_ALGORITHM: u32 = 0x4200F4;
    /// `RNGMode`
    pub const RNG_MODE: u32 = 0x4200F5;
    /// `ClientRegistrationMethod`
    pub const CLIENT_REGISTRATION_METHOD: u32 = 0x4200F6;
    /// `CapabilityInformation`
    pub const CAPABILITY_INFORMATION: u32 = 0x4200F7;
    /// `KeyWrapType`
    pub const KEY_WRAP_TYPE: u32 = 0x4200F8;
    /// `BatchUndoCapability`
    pub const BATCH_UNDO_CAPABILITY: u32 = 0x4200F9;
    /// `BatchContinueCapability`
    pub const BATCH_CONTINUE_CAPABILITY: u32 = 0x4200FA;
    /// `PKCS12FriendlyName`
    pub const PKCS12_FRIENDLY_NAME: u32 = 0x4200FB;
    /// `Description`
    pub const DESCRIPTION: u32 = 0x4200FC;
    /// `Comment`
    pub const COMMENT: u32 = 0x4200FD;
    /// `AuthenticatedEncryptionAdditionalData`
    pub const AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA: u32 = 0x4200FE;
    /// `AuthenticatedEncryptionTag`
    pub const AUTHENTICATED_ENCRYPTION_TAG: u32 = 0x4200FF;
    /// `SaltLength`
    pub const SALT_LENGTH: u32 = 0x420100;
    /// `MaskGenerator`
    pub const MASK_GENERATOR: u32 = 0x420101;
    /// `MaskGeneratorHashingAlgorithm`
    pub const MASK_GENERATOR_HASHING_ALGORITHM: u32 = 0x420102;
    /// `PSource`
    pub const P_SOURCE: u32 = 0x420103;
    /// `TrailerField`
    pub const TRAILER_FIELD: u32 = 0x420104;
    /// `ClientCorrelationValue`
    pub const CLIENT_CORRELATION_VALUE: u32 = 0x420105;
    /// `ServerCorrelationValue`
    pub const SERVER_CORRELATION_VALUE: u32 = 0x420106;
    /// `DigestedData`
    pub const DIGESTED_DATA: u32 = 0x420107;
    /// `CertificateSubjectCN`
    pub const CERTIFICATE_SUBJECT_CN: u32 = 0x420108;
    /// `CertificateSubjectO`
    pub const CERTIFICATE_SUBJECT_O: u32 = 0x420109;
    /// `CertificateSubjectOu`
    pub const CERTIFICATE_SUBJECT_OU: u32 = 0x42010A;
    /// `CertificateSubjectEmail`
    pub const CERTIFICATE_SUBJECT_EMAIL: u32 = 0x42010B;
    /// `CertificateSubjectC`
    pub const CERTIFICATE_SUBJECT_C: u32 = 0x42010C;
    /// `CertificateSubjectSt`
    pub const CERTIFICATE_SUBJECT_ST: u32 = 0x42010D;
    /// `CertificateSubjectL`
    pub const CERTIFICATE_SUBJECT_L: u32 = 0x42010E;
    /// `CertificateSubjectUid`
    pub const CERTIFICATE_SUBJECT_UID: u32 = 0x42010F;
    /// `CertificateSubjectSerialNumber`
    pub const CERTIFICATE_SUBJECT_SERIAL_NUMBER: u32 = 0x420110;
    /// `CertificateSubjectTitle`
    pub const CERTIFICATE_SUBJECT_TITLE: u32 = 0x420111;
    /// `CertificateSubjectDc`
    pub const CERTIFICATE_SUBJECT_DC: u32 = 0x420112;
    /// `CertificateSubjectDNQualifier`
    pub const CERTIFICATE_SUBJECT_DN_QUALIFIER: u32 = 0x420113;
    /// `CertificateIssuerCN`
    pub const CERTIFICATE_ISSUER_CN: u32 = 0x420114;
    /// `CertificateIssuerO`
    pub const CERTIFICATE_ISSUER_O: u32 = 0x420115;
    /// `CertificateIssuerOu`
    pub const CERTIFICATE_ISSUER_OU: u32 = 0x420116;
    /// `CertificateIssuerEmail`
    pub const CERTIFICATE_ISSUER_EMAIL: u32 = 0x420117;
    /// `CertificateIssuerC`
    pub const CERTIFICATE_ISSUER_C: u32 = 0x420118;
    /// `CertificateIssuerSt`
    pub const CERTIFICATE_ISSUER_ST: u32 = 0x420119;
    /// `CertificateIssuerL`
    pub const CERTIFICATE_ISSUER_L: u32 = 0x42011A;
    /// `CertificateIssuerUid`
    pub const CERTIFICATE_ISSUER_UID: u32 = 0x42011B;
    /// `CertificateIssuerSerialNumber`
    pub const CERTIFICATE_ISSUER_SERIAL_NUMBER: u32 = 0x42011C;
    /// `CertificateIssuerTitle`
    pub const CERTIFICATE_ISSUER_TITLE: u32 = 0x42011D;
    /// `CertificateIssuerDc`
    pub const CERTIFICATE_ISSUER_DC: u32 = 0x42011E;
    /// `CertificateIssuerDNQualifier`
    pub const CERTIFICATE_ISSUER_DN_QUALIFIER: u32 = 0x42011F;
    /// `Sensitive`
    pub const SENSITIVE: u32 = 0x420120;
    /// `AlwaysSensitive`
    pub const ALWAYS_SENSITIVE: u32 = 0x420121;
    /// `Extractable`
    pub const EXTRACTABLE: u32 = 0x420122;
    /// `NeverExtractable`
    pub const NEVER_EXTRACTABLE: u32 = 0x420123;
    /// `ReplaceExisting`
    pub const REPLACE_EXISTING: u32 = 0x420124;
    /// `Attributes`
    pub const ATTRIBUTES: u32 = 0x420125;
    /// `CommonAttributes`
    pub const COMMON_ATTRIBUTES: u32 = 0x420126;
    /// `PrivateKeyAttributes`
    pub const PRIVATE_KEY_ATTRIBUTES: u32 = 0x420127;
    /// `PublicKeyAttributes`
    pub const PUBLIC_KEY_ATTRIBUTES: u32 = 0x420128;
    /// `ExtensionEnumeration`
    pub const EXTENSION_ENUMERATION: u32 = 0x420129;
    /// `ExtensionAttribute`
    pub const EXTENSION_ATTRIBUTE: u32 = 0x42012A;
    /// `ExtensionParentStructureTag`
    pub const EXTENSION_PARENT_STRUCTURE_TAG: u32 = 0x42012B;
    /// `ExtensionDescription`
    pub const EXTENSION_DESCRIPTION: u32 = 0x42012C;
    /// `ServerName`
    pub const SERVER_NAME: u32 = 0x42012D;
    /// `ServerSerialNumber`
    pub const SERVER_SERIAL_NUMBER: u32 = 0x42012E;
    /// `ServerVersion`
    pub const SERVER_VERSION: u32 = 0x42012F;
    /// `ServerLoad`
    pub const SERVER_LOAD: u32 = 0x420130;
    /// `ProductName`
    pub const PRODUCT_NAME: u32 = 0x420131;
    /// `BuildLevel`
    pub const BUILD_LEVEL: u32 = 0x420132;
    /// `BuildDate`
    pub const BUILD_DATE: u32 = 0x420133;
    /// `ClusterInfo`
    pub const CLUSTER_INFO: u32 = 0x420134;
    /// `AlternateFailoverEndpoints`
    pub const ALTERNATE_FAILOVER_ENDPOINTS: u32 = 0x420135;
    /// `ShortUniqueIdentifier`
    pub const SHORT_UNIQUE_IDENTIFIER: u32 = 0x420136;
    /// `Reserved`
    pub const RESERVED: u32 = 0x420137;
    /// `Tag`
    pub const TAG: u32 = 0x420138;
    /// `CertificateRequestUniqueIdentifier`
    pub const CERTIFICATE_REQUEST_UNIQUE_IDENTIFIER: u32 = 0x420139;
    /// `NISTKeyType`
    pub const NIST_KEY_TYPE: u32 = 0x42013A;
    /// `AttributeReference`
    pub const ATTRIBUTE_REFERENCE: u32 = 0x42013B;
    /// `CurrentAttribute`
    pub const CURRENT_ATTRIBUTE: u32 = 0x42013C;
    /// `NewAttribute`
    pub const NEW_ATTRIBUTE: u32 = 0x42013D;
    /// `CertificateRequestValue`
    pub const CERTIFICATE_REQUEST_VALUE: u32 = 0x420140;
    /// `LogMessage`
    pub const LOG_MESSAGE: u32 = 0x420141;
    /// `ProfileVersion`
    pub const PROFILE_VERSION: u32 = 0x420142;
    /// `ProfileVersionMajor`
    pub const PROFILE_VERSION_MAJOR: u32 = 0x420143;
    /// `ProfileVersionMinor`
    pub const PROFILE_VERSION_MINOR: u32 = 0x420144;
    /// `ProtectionLevel`
    pub const PROTECTION_LEVEL: u32 = 0x420145;
    /// `ProtectionPeriod`
    pub const PROTECTION_PERIOD: u32 = 0x420146;
    /// `QuantumSafe`
    pub const QUANTUM_SAFE: u32 = 0x420147;
    /// `QuantumSafeCapability`
    pub const QUANTUM_SAFE_CAPABILITY: u32 = 0x420148;
    /// `Ticket`
    pub const TICKET: u32 = 0x420149;
    /// `TicketType`
    pub const TICKET_TYPE: u32 = 0x42014A;
    /// `TicketValue`
    pub const TICKET_VALUE: u32 = 0x42014B;
    /// `RequestCount`
    pub const REQUEST_COUNT: u32 = 0x42014C;
    /// `Rights`
    pub const RIGHTS: u32 = 0x42014D;
    /// `Objects`
    pub const OBJECTS: u32 = 0x42014E;
    /// `Operations`
    pub const OPERATIONS: u32 = 0x42014F;
    /// `Right`
    pub const RIGHT: u32 = 0x420150;
    /// `EndpointRole`
    pub const ENDPOINT_ROLE: u32 = 0x420151;
    /// `DefaultsInformation`
    pub const DEFAULTS_INFORMATION: u32 = 0x420152;
    /// `ObjectDefaults`
    pub const OBJECT_DEFAULTS: u32 = 0x420153;
    /// `Ephemeral`
    pub const EPHEMERAL: u32 = 0x420154;
    /// `ServerHashedPassword`
    pub const SERVER_HASHED_PASSWORD: u32 = 0x420155;
    /// `OneTimePassword`
    pub const ONE_TIME_PASSWORD: u32 = 0x420156;
    /// `HashedPassword`
    pub const HASHED_PASSWORD: u32 = 0x420157;
    /// `AdjustmentType`
    pub const ADJUSTMENT_TYPE: u32 = 0x420158;
    /// `Pkcs11Interface`
    pub const PKCS11_INTERFACE: u32 = 0x420159;
    /// `Pkcs11Function`
    pub const PKCS11_FUNCTION: u32 = 0x42015A;
    /// `Pkcs11InputParameters`
    pub const PKCS11_INPUT_PARAMETERS: u32 = 0x42015B;
    /// `Pkcs11OutputParameters`
    pub const PKCS11_OUTPUT_PARAMETERS: u32 = 0x42015C;
    /// `Pkcs11ReturnCode`
    pub const PKCS11_RETURN_CODE: u32 = 0x42015D;
    /// `ProtectionStorageMask`
    pub const PROTECTION_STORAGE_MASK: u32 = 0x42015E;
    /// `ProtectionStorageMasks`
    pub const PROTECTION_STORAGE_MASKS: u32 = 0x42015F;
    /// `InteropFunction`
    pub const INTEROP_FUNCTION: u32 = 0x420160;
    /// `InteropIdentifier`
    pub const INTEROP_IDENTIFIER: u32 = 0x420161;
    /// `AdjustmentValue`
    pub const ADJUSTMENT_VALUE: u32 = 0x420162;
    /// `CommonProtectionStorageMasks`
    pub const COMMON_PROTECTION_STORAGE_MASKS: u32 = 0x420163;
    /// `PrivateProtectionStorageMasks`
    pub const PRIVATE_PROTECTION_STORAGE_MASKS: u32 = 0x420164;
    /// `PublicProtectionStorageMasks`
    pub const PUBLIC_PROTECTION_STORAGE_MASKS: u32 = 0x420165;
    /// `VendorAttributes`: Cosmian's list of vendor attributes (its tags among them); no specification
    /// tag, so shedu numbers it in the extension range.
    pub const VENDOR_ATTRIBUTES: u32 = 0x54FF01;
    /// `Object`: Cosmian's name for the object of an Import (the specification tags it with its own
    /// type's tag); shedu reads either.
    pub const OBJECT: u32 = 0x54FF02;
}

/// (number, JSON name) of every tag, sorted by number.
pub(crate) const TAG_NAMES: &[(u32, &str)] = &[
    (0x420001, "ActivationDate"),
    (0x420002, "ApplicationData"),
    (0x420003, "ApplicationNamespace"),
    (0x420004, "ApplicationSpecificInformation"),
    (0x420005, "ArchiveDate"),
    (0x420006, "AsynchronousCorrelationValue"),
    (0x420007, "AsynchronousIndicator"),
    (0x420008, "Attribute"),
    (0x420009, "AttributeIndex"),
    (0x42000A, "AttributeName"),
    (0x42000B, "AttributeValue"),
    (0x42000C, "Authentication"),
    (0x42000D, "BatchCount"),
    (0x42000E, "BatchErrorContinuationOption"),
    (0x42000F, "BatchItem"),
    (0x420010, "BatchOrderOption"),
    (0x420011, "BlockCipherMode"),
    (0x420012, "CancellationResult"),
    (0x420013, "Certificate"),
    (0x420014, "CertificateIdentifier"),
    (0x420015, "CertificateIssuer"),
    (0x420016, "CertificateIssuerAlternativeName"),
    (0x420017, "CertificateIssuerDistinguishedName"),
    (0x420018, "CertificateRequest"),
    (0x420019, "CertificateRequestType"),
    (0x42001A, "CertificateSubject"),
    (0x42001B, "CertificateSubjectAlternativeName"),
    (0x42001C, "CertificateSubjectDistinguishedName"),
    (0x42001D, "CertificateType"),
    (0x42001E, "CertificateValue"),
    (0x42001F, "CommonTemplateAttribute"),
    (0x420020, "CompromiseDate"),
    (0x420021, "CompromiseOccurrenceDate"),
    (0x420022, "ContactInformation"),
    (0x420023, "Credential"),
    (0x420024, "CredentialType"),
    (0x420025, "CredentialValue"),
    (0x420026, "CriticalityIndicator"),
    (0x420027, "CRTCoefficient"),
    (0x420028, "CryptographicAlgorithm"),
    (0x420029, "CryptographicDomainParameters"),
    (0x42002A, "CryptographicLength"),
    (0x42002B, "CryptographicParameters"),
    (0x42002C, "CryptographicUsageMask"),
    (0x42002D, "CustomAttribute"),
    (0x42002E, "D"),
    (0x42002F, "DeactivationDate"),
    (0x420030, "DerivationData"),
    (0x420031, "DerivationMethod"),
    (0x420032, "DerivationParameters"),
    (0x420033, "DestroyDate"),
    (0x420034, "Digest"),
    (0x420035, "DigestValue"),
    (0x420036, "EncryptionKeyInformation"),
    (0x420037, "G"),
    (0x420038, "HashingAlgorithm"),
    (0x420039, "InitialDate"),
    (0x42003A, "InitializationVector"),
    (0x42003B, "Issuer"),
    (0x42003C, "IterationCount"),
    (0x42003D, "IVCounterNonce"),
    (0x42003E, "J"),
    (0x42003F, "Key"),
    (0x420040, "KeyBlock"),
    (0x420041, "KeyCompressionType"),
    (0x420042, "KeyFormatType"),
    (0x420043, "KeyMaterial"),
    (0x420044, "KeyPartIdentifier"),
    (0x420045, "KeyValue"),
    (0x420046, "KeyWrappingData"),
    (0x420047, "KeyWrappingSpecification"),
    (0x420048, "LastChangeDate"),
    (0x420049, "LeaseTime"),
    (0x42004A, "Link"),
    (0x42004B, "LinkType"),
    (0x42004C, "LinkedObjectIdentifier"),
    (0x42004D, "MACSignature"),
    (0x42004E, "MACSignatureKeyInformation"),
    (0x42004F, "MaximumItems"),
    (0x420050, "MaximumResponseSize"),
    (0x420051, "MessageExtension"),
    (0x420052, "Modulus"),
    (0x420053, "Name"),
    (0x420054, "NameType"),
    (0x420055, "NameValue"),
    (0x420056, "ObjectGroup"),
    (0x420057, "ObjectType"),
    (0x420058, "Offset"),
    (0x420059, "OpaqueDataType"),
    (0x42005A, "OpaqueDataValue"),
    (0x42005B, "OpaqueObject"),
    (0x42005C, "Operation"),
    (0x42005D, "OperationPolicyName"),
    (0x42005E, "P"),
    (0x42005F, "PaddingMethod"),
    (0x420060, "PrimeExponentP"),
    (0x420061, "PrimeExponentQ"),
    (0x420062, "PrimeFieldSize"),
    (0x420063, "PrivateExponent"),
    (0x420064, "PrivateKey"),
    (0x420065, "PrivateKeyTemplateAttribute"),
    (0x420066, "PrivateKeyUniqueIdentifier"),
    (0x420067, "ProcessStartDate"),
    (0x420068, "ProtectStopDate"),
    (0x420069, "ProtocolVersion"),
    (0x42006A, "ProtocolVersionMajor"),
    (0x42006B, "ProtocolVersionMinor"),
    (0x42006C, "PublicExponent"),
    (0x42006D, "PublicKey"),
    (0x42006E, "PublicKeyTemplateAttribute"),
    (0x42006F, "PublicKeyUniqueIdentifier"),
    (0x420070, "PutFunction"),
    (0x420071, "Q"),
    (0x420072, "QString"),
    (0x420073, "Qlength"),
    (0x420074, "QueryFunction"),
    (0x420075, "RecommendedCurve"),
    (0x420076, "ReplacedUniqueIdentifier"),
    (0x420077, "RequestHeader"),
    (0x420078, "RequestMessage"),
    (0x420079, "RequestPayload"),
    (0x42007A, "ResponseHeader"),
    (0x42007B, "ResponseMessage"),
    (0x42007C, "ResponsePayload"),
    (0x42007D, "ResultMessage"),
    (0x42007E, "ResultReason"),
    (0x42007F, "ResultStatus"),
    (0x420080, "RevocationMessage"),
    (0x420081, "RevocationReason"),
    (0x420082, "RevocationReasonCode"),
    (0x420083, "KeyRoleType"),
    (0x420084, "Salt"),
    (0x420085, "SecretData"),
    (0x420086, "SecretDataType"),
    (0x420087, "SerialNumber"),
    (0x420088, "ServerInformation"),
    (0x420089, "SplitKey"),
    (0x42008A, "SplitKeyMethod"),
    (0x42008B, "SplitKeyParts"),
    (0x42008C, "SplitKeyThreshold"),
    (0x42008D, "State"),
    (0x42008E, "StorageStatusMask"),
    (0x42008F, "SymmetricKey"),
    (0x420090, "Template"),
    (0x420091, "TemplateAttribute"),
    (0x420092, "TimeStamp"),
    (0x420093, "UniqueBatchItemID"),
    (0x420094, "UniqueIdentifier"),
    (0x420095, "UsageLimits"),
    (0x420096, "UsageLimitsCount"),
    (0x420097, "UsageLimitsTotal"),
    (0x420098, "UsageLimitsUnit"),
    (0x420099, "Username"),
    (0x42009A, "ValidityDate"),
    (0x42009B, "ValidityIndicator"),
    (0x42009C, "VendorExtension"),
    (0x42009D, "VendorIdentification"),
    (0x42009E, "WrappingMethod"),
    (0x42009F, "X"),
    (0x4200A0, "Y"),
    (0x4200A1, "Password"),
    (0x4200A2, "DeviceIdentifier"),
    (0x4200A3, "EncodingOption"),
    (0x4200A4, "ExtensionInformation"),
    (0x4200A5, "ExtensionName"),
    (0x4200A6, "ExtensionTag"),
    (0x4200A7, "ExtensionType"),
    (0x4200A8, "Fresh"),
    (0x4200A9, "MachineIdentifier"),
    (0x4200AA, "MediaIdentifier"),
    (0x4200AB, "NetworkIdentifier"),
    (0x4200AC, "ObjectGroupMember"),
    (0x4200AD, "CertificateLength"),
    (0x4200AE, "DigitalSignatureAlgorithm"),
    (0x4200AF, "CertificateSerialNumber"),
    (0x4200B0, "DeviceSerialNumber"),
    (0x4200B1, "IssuerAlternativeName"),
    (0x4200B2, "IssuerDistinguishedName"),
    (0x4200B3, "SubjectAlternativeName"),
    (0x4200B4, "SubjectDistinguishedName"),
    (0x4200B5, "X509CertificateIdentifier"),
    (0x4200B6, "X509CertificateIssuer"),
    (0x4200B7, "X509CertificateSubject"),
    (0x4200B8, "KeyValueLocation"),
    (0x4200B9, "KeyValueLocationValue"),
    (0x4200BA, "KeyValueLocationType"),
    (0x4200BB, "KeyValuePresent"),
    (0x4200BC, "OriginalCreationDate"),
    (0x4200BD, "PGPKey"),
    (0x4200BE, "PGPKeyVersion"),
    (0x4200BF, "AlternativeName"),
    (0x4200C0, "AlternativeNameValue"),
    (0x4200C1, "AlternativeNameType"),
    (0x4200C2, "Data"),
    (0x4200C3, "SignatureData"),
    (0x4200C4, "DataLength"),
    (0x4200C5, "RandomIV"),
    (0x4200C6, "MACData"),
    (0x4200C7, "AttestationType"),
    (0x4200C8, "Nonce"),
    (0x4200C9, "NonceID"),
    (0x4200CA, "NonceValue"),
    (0x4200CB, "AttestationMeasurement"),
    (0x4200CC, "AttestationAssertion"),
    (0x4200CD, "IVLength"),
    (0x4200CE, "TagLength"),
    (0x4200CF, "FixedFieldLength"),
    (0x4200D0, "CounterLength"),
    (0x4200D1, "InitialCounterValue"),
    (0x4200D2, "InvocationFieldLength"),
    (0x4200D3, "AttestationCapableIndicator"),
    (0x4200D4, "OffsetItems"),
    (0x4200D5, "LocatedItems"),
    (0x4200D6, "CorrelationValue"),
    (0x4200D7, "InitIndicator"),
    (0x4200D8, "FinalIndicator"),
    (0x4200D9, "RNGParameters"),
    (0x4200DA, "RNGAlgorithm"),
    (0x4200DB, "DRBGAlgorithm"),
    (0x4200DC, "Fips186Variation"),
    (0x4200DD, "PredictionResistance"),
    (0x4200DE, "RandomNumberGenerator"),
    (0x4200DF, "ValidationInformation"),
    (0x4200E0, "ValidationAuthorityType"),
    (0x4200E1, "ValidationAuthorityCountry"),
    (0x4200E2, "ValidationAuthorityURI"),
    (0x4200E3, "ValidationVersionMajor"),
    (0x4200E4, "ValidationVersionMinor"),
    (0x4200E5, "ValidationType"),
    (0x4200E6, "ValidationLevel"),
    (0x4200E7, "ValidationCertificateIdentifier"),
    (0x4200E8, "ValidationCertificateURI"),
    (0x4200E9, "ValidationVendorURI"),
    (0x4200EA, "ValidationProfile"),
    (0x4200EB, "ProfileInformation"),
    (0x4200EC, "ProfileName"),
    (0x4200ED, "ServerURI"),
    (0x4200EE, "ServerPort"),
    (0x4200EF, "StreamingCapability"),
    (0x4200F0, "AsynchronousCapability"),
    (0x4200F1, "AttestationCapability"),
    (0x4200F2, "UnwrapMode"),
    (0x4200F3, "DestroyAction"),
    (0x4200F4, "ShreddingAlgorithm"),
    (0x4200F5, "RNGMode"),
    (0x4200F6, "ClientRegistrationMethod"),
    (0x4200F7, "CapabilityInformation"),
    (0x4200F8, "KeyWrapType"),
    (0x4200F9, "BatchUndoCapability"),
    (0x4200FA, "BatchContinueCapability"),
    (0x4200FB, "PKCS12FriendlyName"),
    (0x4200FC, "Description"),
    (0x4200FD, "Comment"),
    (0x4200FE, "AuthenticatedEncryptionAdditionalData"),
    (0x4200FF, "AuthenticatedEncryptionTag"),
    (0x420100, "SaltLength"),
    (0x420101, "MaskGenerator"),
    (0x420102, "MaskGeneratorHashingAlgorithm"),
    (0x420103, "PSource"),
    (0x420104, "TrailerField"),
    (0x420105, "ClientCorrelationValue"),
    (0x420106, "ServerCorrelationValue"),
    (0x420107, "DigestedData"),
    (0x420108, "CertificateSubjectCN"),
    (0x420109, "CertificateSubjectO"),
    (0x42010A, "CertificateSubjectOu"),
    (0x42010B, "CertificateSubjectEmail"),
    (0x42010C, "CertificateSubjectC"),
    (0x42010D, "CertificateSubjectSt"),
    (0x42010E, "CertificateSubjectL"),
    (0x42010F, "CertificateSubjectUid"),
    (0x420110, "CertificateSubjectSerialNumber"),
    (0x420111, "CertificateSubjectTitle"),
    (0x420112, "CertificateSubjectDc"),
    (0x420113, "CertificateSubjectDNQualifier"),
    (0x420114, "CertificateIssuerCN"),
    (0x420115, "CertificateIssuerO"),
    (0x420116, "CertificateIssuerOu"),
    (0x420117, "CertificateIssuerEmail"),
    (0x420118, "CertificateIssuerC"),
    (0x420119, "CertificateIssuerSt"),
    (0x42011A, "CertificateIssuerL"),
    (0x42011B, "CertificateIssuerUid"),
    (0x42011C, "CertificateIssuerSerialNumber"),
    (0x42011D, "CertificateIssuerTitle"),
    (0x42011E, "CertificateIssuerDc"),
    (0x42011F, "CertificateIssuerDNQualifier"),
    (0x420120, "Sensitive"),
    (0x420121, "AlwaysSensitive"),
    (0x420122, "Extractable"),
    (0x420123, "NeverExtractable"),
    (0x420124, "ReplaceExisting"),
    (0x420125, "Attributes"),
    (0x420126, "CommonAttributes"),
    (0x420127, "PrivateKeyAttributes"),
    (0x420128, "PublicKeyAttributes"),
    (0x420129, "ExtensionEnumeration"),
    (0x42012A, "ExtensionAttribute"),
    (0x42012B, "ExtensionParentStructureTag"),
    (0x42012C, "ExtensionDescription"),
    (0x42012D, "ServerName"),
    (0x42012E, "ServerSerialNumber"),
    (0x42012F, "ServerVersion"),
    (0x420130, "ServerLoad"),
    (0x420131, "ProductName"),
    (0x420132, "BuildLevel"),
    (0x420133, "BuildDate"),
    (0x420134, "ClusterInfo"),
    (0x420135, "AlternateFailoverEndpoints"),
    (0x420136, "ShortUniqueIdentifier"),
    (0x420137, "Reserved"),
    (0x420138, "Tag"),
    (0x420139, "CertificateRequestUniqueIdentifier"),
    (0x42013A, "NISTKeyType"),
    (0x42013B, "AttributeReference"),
    (0x42013C, "CurrentAttribute"),
    (0x42013D, "NewAttribute"),
    (0x420140, "CertificateRequestValue"),
    (0x420141, "LogMessage"),
    (0x420142, "ProfileVersion"),
    (0x420143, "ProfileVersionMajor"),
    (0x420144, "ProfileVersionMinor"),
    (0x420145, "ProtectionLevel"),
    (0x420146, "ProtectionPeriod"),
    (0x420147, "QuantumSafe"),
    (0x420148, "QuantumSafeCapability"),
    (0x420149, "Ticket"),
    (0x42014A, "TicketType"),
    (0x42014B, "TicketValue"),
    (0x42014C, "RequestCount"),
    (0x42014D, "Rights"),
    (0x42014E, "Objects"),
    (0x42014F, "Operations"),
    (0x420150, "Right"),
    (0x420151, "EndpointRole"),
    (0x420152, "DefaultsInformation"),
    (0x420153, "ObjectDefaults"),
    (0x420154, "Ephemeral"),
    (0x420155, "ServerHashedPassword"),
    (0x420156, "OneTimePassword"),
    (0x420157, "HashedPassword"),
    (0x420158, "AdjustmentType"),
    (0x420159, "Pkcs11Interface"),
    (0x42015A, "Pkcs11Function"),
    (0x42015B, "Pkcs11InputParameters"),
    (0x42015C, "Pkcs11OutputParameters"),
    (0x42015D, "Pkcs11ReturnCode"),
    (0x42015E, "ProtectionStorageMask"),
    (0x42015F, "ProtectionStorageMasks"),
    (0x420160, "InteropFunction"),
    (0x420161, "InteropIdentifier"),
    (0x420162, "AdjustmentValue"),
    (0x420163, "CommonProtectionStorageMasks"),
    (0x420164, "PrivateProtectionStorageMasks"),
    (0x420165, "PublicProtectionStorageMasks"),
    // Cosmian's KMS names a list of KMIP 2.1 vendor attributes (Vendor Identification, Attribute Name,
    // Attribute Value) `VendorAttributes`; it is no specification tag, so shedu gives it a number of
    // the extension range (0x54xxxx) to read Cosmian's JSON requests.
    (tag::VENDOR_ATTRIBUTES, "VendorAttributes"),
    (tag::OBJECT, "Object"),
];

/// The `Operation` enumeration.
pub mod operation {
    /// `Create`
    pub const CREATE: u32 = 0x00000001;
    /// `CreateKeyPair`
    pub const CREATE_KEY_PAIR: u32 = 0x00000002;
    /// `Register`
    pub const REGISTER: u32 = 0x00000003;
    /// `Rekey`
    pub const REKEY: u32 = 0x00000004;
    /// `DeriveKey`
    pub const DERIVE_KEY: u32 = 0x00000005;
    /// `Certify`
    pub const CERTIFY: u32 = 0x00000006;
    /// `Recertify`
    pub const RECERTIFY: u32 = 0x00000007;
    /// `Locate`
    pub const LOCATE: u32 = 0x00000008;
    /// `Check`
    pub const CHECK: u32 = 0x00000009;
    /// `Get`
    pub const GET: u32 = 0x0000000A;
    /// `GetAttributes`
    pub const GET_ATTRIBUTES: u32 = 0x0000000B;
    /// `GetAttributeList`
    pub const GET_ATTRIBUTE_LIST: u32 = 0x0000000C;
    /// `AddAttribute`
    pub const ADD_ATTRIBUTE: u32 = 0x0000000D;
    /// `ModifyAttribute`
    pub const MODIFY_ATTRIBUTE: u32 = 0x0000000E;
    /// `DeleteAttribute`
    pub const DELETE_ATTRIBUTE: u32 = 0x0000000F;
    /// `ObtainLease`
    pub const OBTAIN_LEASE: u32 = 0x00000010;
    /// `GetUsageAllocation`
    pub const GET_USAGE_ALLOCATION: u32 = 0x00000011;
    /// `Activate`
    pub const ACTIVATE: u32 = 0x00000012;
    /// `Revoke`
    pub const REVOKE: u32 = 0x00000013;
    /// `Destroy`
    pub const DESTROY: u32 = 0x00000014;
    /// `Archive`
    pub const ARCHIVE: u32 = 0x00000015;
    /// `Recover`
    pub const RECOVER: u32 = 0x00000016;
    /// `Validate`
    pub const VALIDATE: u32 = 0x00000017;
    /// `Query`
    pub const QUERY: u32 = 0x00000018;
    /// `Cancel`
    pub const CANCEL: u32 = 0x00000019;
    /// `Poll`
    pub const POLL: u32 = 0x0000001A;
    /// `Notify`
    pub const NOTIFY: u32 = 0x0000001B;
    /// `Put`
    pub const PUT: u32 = 0x0000001C;
    /// `RekeyKeyPair`
    pub const REKEY_KEY_PAIR: u32 = 0x0000001D;
    /// `DiscoverVersions`
    pub const DISCOVER_VERSIONS: u32 = 0x0000001E;
    /// `Encrypt`
    pub const ENCRYPT: u32 = 0x0000001F;
    /// `Decrypt`
    pub const DECRYPT: u32 = 0x00000020;
    /// `Sign`
    pub const SIGN: u32 = 0x00000021;
    /// `SignatureVerify`
    pub const SIGNATURE_VERIFY: u32 = 0x00000022;
    /// `MAC`
    pub const MAC: u32 = 0x00000023;
    /// `MACVerify`
    pub const MAC_VERIFY: u32 = 0x00000024;
    /// `RNGRetrieve`
    pub const RNG_RETRIEVE: u32 = 0x00000025;
    /// `RNGSEED`
    pub const RNG_SEED: u32 = 0x00000026;
    /// `Hash`
    pub const HASH: u32 = 0x00000027;
    /// `CreateSplitKey`
    pub const CREATE_SPLIT_KEY: u32 = 0x00000028;
    /// `JoinSplitKey`
    pub const JOIN_SPLIT_KEY: u32 = 0x00000029;
    /// `Import`
    pub const IMPORT: u32 = 0x0000002A;
    /// `Export`
    pub const EXPORT: u32 = 0x0000002B;
    /// `Log`
    pub const LOG: u32 = 0x0000002C;
    /// `Login`
    pub const LOGIN: u32 = 0x0000002D;
    /// `Logout`
    pub const LOGOUT: u32 = 0x0000002E;
    /// `DelegatedLogin`
    pub const DELEGATED_LOGIN: u32 = 0x0000002F;
    /// `AdjustAttribute`
    pub const ADJUST_ATTRIBUTE: u32 = 0x00000030;
    /// `SetAttribute`
    pub const SET_ATTRIBUTE: u32 = 0x00000031;
    /// `SetEndpointRole`
    pub const SET_ENDPOINT_ROLE: u32 = 0x00000032;
    /// `PKCS11`
    pub const PKCS_11: u32 = 0x00000033;
    /// `Interop`
    pub const INTEROP: u32 = 0x00000034;
    /// `Reprovision`
    pub const REPROVISION: u32 = 0x00000035;
}

const OPERATION_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Create"),
    (0x00000002, "CreateKeyPair"),
    (0x00000003, "Register"),
    (0x00000004, "ReKey"),
    (0x00000005, "DeriveKey"),
    (0x00000006, "Certify"),
    (0x00000007, "Recertify"),
    (0x00000008, "Locate"),
    (0x00000009, "Check"),
    (0x0000000A, "Get"),
    (0x0000000B, "GetAttributes"),
    (0x0000000C, "GetAttributeList"),
    (0x0000000D, "AddAttribute"),
    (0x0000000E, "ModifyAttribute"),
    (0x0000000F, "DeleteAttribute"),
    (0x00000010, "ObtainLease"),
    (0x00000011, "GetUsageAllocation"),
    (0x00000012, "Activate"),
    (0x00000013, "Revoke"),
    (0x00000014, "Destroy"),
    (0x00000015, "Archive"),
    (0x00000016, "Recover"),
    (0x00000017, "Validate"),
    (0x00000018, "Query"),
    (0x00000019, "Cancel"),
    (0x0000001A, "Poll"),
    (0x0000001B, "Notify"),
    (0x0000001C, "Put"),
    (0x0000001D, "ReKeyKeyPair"),
    (0x0000001E, "DiscoverVersions"),
    (0x0000001F, "Encrypt"),
    (0x00000020, "Decrypt"),
    (0x00000021, "Sign"),
    (0x00000022, "SignatureVerify"),
    (0x00000023, "MAC"),
    (0x00000024, "MACVerify"),
    (0x00000025, "RNGRetrieve"),
    (0x00000026, "RNGSEED"),
    (0x00000027, "Hash"),
    (0x00000028, "CreateSplitKey"),
    (0x00000029, "JoinSplitKey"),
    (0x0000002A, "Import"),
    (0x0000002B, "Export"),
    (0x0000002C, "Log"),
    (0x0000002D, "Login"),
    (0x0000002E, "Logout"),
    (0x0000002F, "DelegatedLogin"),
    (0x00000030, "AdjustAttribute"),
    (0x00000031, "SetAttribute"),
    (0x00000032, "SetEndpointRole"),
    (0x00000033, "PKCS11"),
    (0x00000034, "Interop"),
    (0x00000035, "Reprovision"),
];

/// The `ObjectType` enumeration.
pub mod object_type {
    /// `Certificate`
    pub const CERTIFICATE: u32 = 0x00000001;
    /// `SymmetricKey`
    pub const SYMMETRIC_KEY: u32 = 0x00000002;
    /// `PublicKey`
    pub const PUBLIC_KEY: u32 = 0x00000003;
    /// `PrivateKey`
    pub const PRIVATE_KEY: u32 = 0x00000004;
    /// `SplitKey`
    pub const SPLIT_KEY: u32 = 0x00000005;
    /// `Template`
    pub const TEMPLATE: u32 = 0x00000006;
    /// `SecretData`
    pub const SECRET_DATA: u32 = 0x00000007;
    /// `OpaqueObject`
    pub const OPAQUE_OBJECT: u32 = 0x00000008;
    /// `PGPKey`
    pub const PGP_KEY: u32 = 0x00000009;
    /// `CertificateRequest`
    pub const CERTIFICATE_REQUEST: u32 = 0x0000000A;
}

const OBJECT_TYPE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Certificate"),
    (0x00000002, "SymmetricKey"),
    (0x00000003, "PublicKey"),
    (0x00000004, "PrivateKey"),
    (0x00000005, "SplitKey"),
    (0x00000006, "Template"),
    (0x00000007, "SecretData"),
    (0x00000008, "OpaqueObject"),
    (0x00000009, "PGPKey"),
    (0x0000000A, "CertificateRequest"),
];

/// The `ResultStatus` enumeration.
pub mod result_status {
    /// `Success`
    pub const SUCCESS: u32 = 0x00000000;
    /// `OperationFailed`
    pub const OPERATION_FAILED: u32 = 0x00000001;
    /// `OperationPending`
    pub const OPERATION_PENDING: u32 = 0x00000002;
    /// `OperationUndone`
    pub const OPERATION_UNDONE: u32 = 0x00000003;
}

const RESULT_STATUS_NAMES: &[(u32, &str)] = &[
    (0x00000000, "Success"),
    (0x00000001, "OperationFailed"),
    (0x00000002, "OperationPending"),
    (0x00000003, "OperationUndone"),
];

/// The `ResultReason` enumeration.
pub mod result_reason {
    /// `ItemNotFound`
    pub const ITEM_NOT_FOUND: u32 = 0x00000001;
    /// `ResponseTooLarge`
    pub const RESPONSE_TOO_LARGE: u32 = 0x00000002;
    /// `AuthenticationNotSuccessful`
    pub const AUTHENTICATION_NOT_SUCCESSFUL: u32 = 0x00000003;
    /// `InvalidMessage`
    pub const INVALID_MESSAGE: u32 = 0x00000004;
    /// `OperationNotSupported`
    pub const OPERATION_NOT_SUPPORTED: u32 = 0x00000005;
    /// `MissingData`
    pub const MISSING_DATA: u32 = 0x00000006;
    /// `InvalidField`
    pub const INVALID_FIELD: u32 = 0x00000007;
    /// `FeatureNotSupported`
    pub const FEATURE_NOT_SUPPORTED: u32 = 0x00000008;
    /// `OperationCanceledByRequester`
    pub const OPERATION_CANCELED_BY_REQUESTER: u32 = 0x00000009;
    /// `CryptographicFailure`
    pub const CRYPTOGRAPHIC_FAILURE: u32 = 0x0000000A;
    /// `IllegalOperation`
    pub const ILLEGAL_OPERATION: u32 = 0x0000000B;
    /// `PermissionDenied`
    pub const PERMISSION_DENIED: u32 = 0x0000000C;
    /// `ObjectArchived`
    pub const OBJECT_ARCHIVED: u32 = 0x0000000D;
    /// `IndexOutOfBounds`
    pub const INDEX_OUT_OF_BOUNDS: u32 = 0x0000000E;
    /// `ApplicationNamespaceNotSupported`
    pub const APPLICATION_NAMESPACE_NOT_SUPPORTED: u32 = 0x0000000F;
    /// `KeyFormatTypeNotSupported`
    pub const KEY_FORMAT_TYPE_NOT_SUPPORTED: u32 = 0x00000010;
    /// `KeyCompressionTypeNotSupported`
    pub const KEY_COMPRESSION_TYPE_NOT_SUPPORTED: u32 = 0x00000011;
    /// `EncodingOptionError`
    pub const ENCODING_OPTION_ERROR: u32 = 0x00000012;
    /// `KeyValueNotPresent`
    pub const KEY_VALUE_NOT_PRESENT: u32 = 0x00000013;
    /// `AttestationRequired`
    pub const ATTESTATION_REQUIRED: u32 = 0x00000014;
    /// `AttestationFailed`
    pub const ATTESTATION_FAILED: u32 = 0x00000015;
    /// `Sensitive`
    pub const SENSITIVE: u32 = 0x00000016;
    /// `NotExtractable`
    pub const NOT_EXTRACTABLE: u32 = 0x00000017;
    /// `ObjectAlreadyExists`
    pub const OBJECT_ALREADY_EXISTS: u32 = 0x00000018;
    /// `InvalidTicket`
    pub const INVALID_TICKET: u32 = 0x00000019;
    /// `UsageLimitExceeded`
    pub const USAGE_LIMIT_EXCEEDED: u32 = 0x0000001A;
    /// `NumericRange`
    pub const NUMERIC_RANGE: u32 = 0x0000001B;
    /// `InvalidDataType`
    pub const INVALID_DATA_TYPE: u32 = 0x0000001C;
    /// `ReadOnlyAttribute`
    pub const READ_ONLY_ATTRIBUTE: u32 = 0x0000001D;
    /// `MultiValuedAttribute`
    pub const MULTI_VALUED_ATTRIBUTE: u32 = 0x0000001E;
    /// `UnsupportedAttribute`
    pub const UNSUPPORTED_ATTRIBUTE: u32 = 0x0000001F;
    /// `AttributeInstanceNotFound`
    pub const ATTRIBUTE_INSTANCE_NOT_FOUND: u32 = 0x00000020;
    /// `AttributeNotFound`
    pub const ATTRIBUTE_NOT_FOUND: u32 = 0x00000021;
    /// `AttributeReadOnly`
    pub const ATTRIBUTE_READ_ONLY: u32 = 0x00000022;
    /// `AttributeSingleValued`
    pub const ATTRIBUTE_SINGLE_VALUED: u32 = 0x00000023;
    /// `BadCryptographicParameters`
    pub const BAD_CRYPTOGRAPHIC_PARAMETERS: u32 = 0x00000024;
    /// `BadPassword`
    pub const BAD_PASSWORD: u32 = 0x00000025;
    /// `CodecError`
    pub const CODEC_ERROR: u32 = 0x00000026;
    /// `IllegalObjectType`
    pub const ILLEGAL_OBJECT_TYPE: u32 = 0x00000028;
    /// `IncompatibleCryptographicUsageMask`
    pub const INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK: u32 = 0x00000029;
    /// `InternalServerError`
    pub const INTERNAL_SERVER_ERROR: u32 = 0x0000002A;
    /// `InvalidAsynchronousCorrelationValue`
    pub const INVALID_ASYNCHRONOUS_CORRELATION_VALUE: u32 = 0x0000002B;
    /// `InvalidAttribute`
    pub const INVALID_ATTRIBUTE: u32 = 0x0000002C;
    /// `InvalidAttributeValue`
    pub const INVALID_ATTRIBUTE_VALUE: u32 = 0x0000002D;
    /// `InvalidCorrelationValue`
    pub const INVALID_CORRELATION_VALUE: u32 = 0x0000002E;
    /// `InvalidCSR`
    pub const INVALID_CSR: u32 = 0x0000002F;
    /// `InvalidObjectType`
    pub const INVALID_OBJECT_TYPE: u32 = 0x00000030;
    /// `KeyWrapTypeNotSupported`
    pub const KEY_WRAP_TYPE_NOT_SUPPORTED: u32 = 0x00000032;
    /// `MissingInitializationVector`
    pub const MISSING_INITIALIZATION_VECTOR: u32 = 0x00000034;
    /// `NonUniqueNameAttribute`
    pub const NON_UNIQUE_NAME_ATTRIBUTE: u32 = 0x00000035;
    /// `ObjectDestroyed`
    pub const OBJECT_DESTROYED: u32 = 0x00000036;
    /// `ObjectNotFound`
    pub const OBJECT_NOT_FOUND: u32 = 0x00000037;
    /// `NotAuthorised`
    pub const NOT_AUTHORISED: u32 = 0x00000039;
    /// `ServerLimitExceeded`
    pub const SERVER_LIMIT_EXCEEDED: u32 = 0x0000003A;
    /// `UnknownEnumeration`
    pub const UNKNOWN_ENUMERATION: u32 = 0x0000003B;
    /// `UnknownMessageExtension`
    pub const UNKNOWN_MESSAGE_EXTENSION: u32 = 0x0000003C;
    /// `UnknownTag`
    pub const UNKNOWN_TAG: u32 = 0x0000003D;
    /// `UnsupportedCryptographicParameters`
    pub const UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS: u32 = 0x0000003E;
    /// `UnsupportedProtocolVersion`
    pub const UNSUPPORTED_PROTOCOL_VERSION: u32 = 0x0000003F;
    /// `WrappingObjectArchived`
    pub const WRAPPING_OBJECT_ARCHIVED: u32 = 0x00000040;
    /// `WrappingObjectDestroyed`
    pub const WRAPPING_OBJECT_DESTROYED: u32 = 0x00000041;
    /// `WrappingObjectNotFound`
    pub const WRAPPING_OBJECT_NOT_FOUND: u32 = 0x00000042;
    /// `WrongKeyLifecycleState`
    pub const WRONG_KEY_LIFECYCLE_STATE: u32 = 0x00000043;
    /// `ProtectionStorageUnavailable`
    pub const PROTECTION_STORAGE_UNAVAILABLE: u32 = 0x00000044;
    /// `Pkcs11CodecError`
    pub const PKCS11_CODEC_ERROR: u32 = 0x00000045;
    /// `Pkcs11InvalidFunction`
    pub const PKCS11_INVALID_FUNCTION: u32 = 0x00000046;
    /// `Pkcs11InvalidInterface`
    pub const PKCS11_INVALID_INTERFACE: u32 = 0x00000047;
    /// `GeneralFailure`
    pub const GENERAL_FAILURE: u32 = 0x00000100;
}

const RESULT_REASON_NAMES: &[(u32, &str)] = &[
    (0x00000001, "ItemNotFound"),
    (0x00000002, "ResponseTooLarge"),
    (0x00000003, "AuthenticationNotSuccessful"),
    (0x00000004, "InvalidMessage"),
    (0x00000005, "OperationNotSupported"),
    (0x00000006, "MissingData"),
    (0x00000007, "InvalidField"),
    (0x00000008, "FeatureNotSupported"),
    (0x00000009, "OperationCanceledByRequester"),
    (0x0000000A, "CryptographicFailure"),
    (0x0000000B, "IllegalOperation"),
    (0x0000000C, "PermissionDenied"),
    (0x0000000D, "ObjectArchived"),
    (0x0000000E, "IndexOutOfBounds"),
    (0x0000000F, "ApplicationNamespaceNotSupported"),
    (0x00000010, "KeyFormatTypeNotSupported"),
    (0x00000011, "KeyCompressionTypeNotSupported"),
    (0x00000012, "EncodingOptionError"),
    (0x00000013, "KeyValueNotPresent"),
    (0x00000014, "AttestationRequired"),
    (0x00000015, "AttestationFailed"),
    (0x00000016, "Sensitive"),
    (0x00000017, "NotExtractable"),
    (0x00000018, "ObjectAlreadyExists"),
    (0x00000019, "InvalidTicket"),
    (0x0000001A, "UsageLimitExceeded"),
    (0x0000001B, "NumericRange"),
    (0x0000001C, "InvalidDataType"),
    (0x0000001D, "ReadOnlyAttribute"),
    (0x0000001E, "MultiValuedAttribute"),
    (0x0000001F, "UnsupportedAttribute"),
    (0x00000020, "AttributeInstanceNotFound"),
    (0x00000021, "AttributeNotFound"),
    (0x00000022, "AttributeReadOnly"),
    (0x00000023, "AttributeSingleValued"),
    (0x00000024, "BadCryptographicParameters"),
    (0x00000025, "BadPassword"),
    (0x00000026, "CodecError"),
    (0x00000028, "IllegalObjectType"),
    (0x00000029, "IncompatibleCryptographicUsageMask"),
    (0x0000002A, "InternalServerError"),
    (0x0000002B, "InvalidAsynchronousCorrelationValue"),
    (0x0000002C, "InvalidAttribute"),
    (0x0000002D, "InvalidAttributeValue"),
    (0x0000002E, "InvalidCorrelationValue"),
    (0x0000002F, "InvalidCSR"),
    (0x00000030, "InvalidObjectType"),
    (0x00000032, "KeyWrapTypeNotSupported"),
    (0x00000034, "MissingInitializationVector"),
    (0x00000035, "NonUniqueNameAttribute"),
    (0x00000036, "ObjectDestroyed"),
    (0x00000037, "ObjectNotFound"),
    (0x00000039, "NotAuthorised"),
    (0x0000003A, "ServerLimitExceeded"),
    (0x0000003B, "UnknownEnumeration"),
    (0x0000003C, "UnknownMessageExtension"),
    (0x0000003D, "UnknownTag"),
    (0x0000003E, "UnsupportedCryptographicParameters"),
    (0x0000003F, "UnsupportedProtocolVersion"),
    (0x00000040, "WrappingObjectArchived"),
    (0x00000041, "WrappingObjectDestroyed"),
    (0x00000042, "WrappingObjectNotFound"),
    (0x00000043, "WrongKeyLifecycleState"),
    (0x00000044, "ProtectionStorageUnavailable"),
    (0x00000045, "Pkcs11CodecError"),
    (0x00000046, "Pkcs11InvalidFunction"),
    (0x00000047, "Pkcs11InvalidInterface"),
    (0x00000100, "GeneralFailure"),
];

/// The `CryptographicAlgorithm` enumeration.
pub mod cryptographic_algorithm {
    /// `DES`
    pub const DES: u32 = 0x00000001;
    /// `TripleDES`
    pub const TRIPLE_DES: u32 = 0x00000002;
    /// `AES`
    pub const AES: u32 = 0x00000003;
    /// `RSA`
    pub const RSA: u32 = 0x00000004;
    /// `DSA`
    pub const DSA: u32 = 0x00000005;
    /// `ECDSA`
    pub const ECDSA: u32 = 0x00000006;
    /// `HMACSHA1`
    pub const HMAC_SHA1: u32 = 0x00000007;
    /// `HMACSHA224`
    pub const HMAC_SHA224: u32 = 0x00000008;
    /// `HMACSHA256`
    pub const HMAC_SHA256: u32 = 0x00000009;
    /// `HMACSHA384`
    pub const HMAC_SHA384: u32 = 0x0000000A;
    /// `HMACSHA512`
    pub const HMAC_SHA512: u32 = 0x0000000B;
    /// `HMACMD5`
    pub const HMAC_MD5: u32 = 0x0000000C;
    /// `DH`
    pub const DH: u32 = 0x0000000D;
    /// `ECDH`
    pub const ECDH: u32 = 0x0000000E;
    /// `ECMQV`
    pub const ECMQV: u32 = 0x0000000F;
    /// `Blowfish`
    pub const BLOWFISH: u32 = 0x00000010;
    /// `Camellia`
    pub const CAMELLIA: u32 = 0x00000011;
    /// `Cast5`
    pub const CAST5: u32 = 0x00000012;
    /// `Idea`
    pub const IDEA: u32 = 0x00000013;
    /// `Mars`
    pub const MARS: u32 = 0x00000014;
    /// `RC2`
    pub const RC2: u32 = 0x00000015;
    /// `RC4`
    pub const RC4: u32 = 0x00000016;
    /// `RC5`
    pub const RC5: u32 = 0x00000017;
    /// `Skipjack`
    pub const SKIPJACK: u32 = 0x00000018;
    /// `Twofish`
    pub const TWOFISH: u32 = 0x00000019;
    /// `EC`
    pub const EC: u32 = 0x0000001A;
    /// `OneTimePad`
    pub const ONE_TIME_PAD: u32 = 0x0000001B;
    /// `CHACHA20`
    pub const CHACHA20: u32 = 0x0000001C;
    /// `POLY1305`
    pub const POLY1305: u32 = 0x0000001D;
    /// `CHACHA20POLY1305`
    pub const CHACHA20_POLY1305: u32 = 0x0000001E;
    /// `SHA3224`
    pub const SHA3_224: u32 = 0x0000001F;
    /// `SHA3256`
    pub const SHA3_256: u32 = 0x00000020;
    /// `SHA3384`
    pub const SHA3_384: u32 = 0x00000021;
    /// `SHA3512`
    pub const SHA3_512: u32 = 0x00000022;
    /// `HMACSHA3224`
    pub const HMAC_SHA3_224: u32 = 0x00000023;
    /// `HMACSHA3256`
    pub const HMAC_SHA3_256: u32 = 0x00000024;
    /// `HMACSHA3384`
    pub const HMAC_SHA3_384: u32 = 0x00000025;
    /// `HMACSHA3512`
    pub const HMAC_SHA3_512: u32 = 0x00000026;
    /// `SHAKE128`
    pub const SHAKE_128: u32 = 0x00000027;
    /// `SHAKE256`
    pub const SHAKE_256: u32 = 0x00000028;
    /// `ARIA`
    pub const ARIA: u32 = 0x00000029;
    /// `SEED`
    pub const SEED: u32 = 0x0000002A;
    /// `SM2`
    pub const SM2: u32 = 0x0000002B;
    /// `SM3`
    pub const SM3: u32 = 0x0000002C;
    /// `SM4`
    pub const SM4: u32 = 0x0000002D;
    /// `GOSTR34102012`
    pub const GOST_R_34_10_2012: u32 = 0x0000002E;
    /// `GOSTR34112012`
    pub const GOST_R_34_11_2012: u32 = 0x0000002F;
    /// `GOSTR34132015`
    pub const GOST_R_34_13_2015: u32 = 0x00000030;
    /// `GOST2814789`
    pub const GOST_28147_89: u32 = 0x00000031;
    /// `XMSS`
    pub const XMSS: u32 = 0x00000032;
    /// `Sphincs256`
    pub const SPHINCS_256: u32 = 0x00000033;
    /// `Mceliece`
    pub const MCELIECE: u32 = 0x00000034;
    /// `Mceliece6960119`
    pub const MCELIECE_6960119: u32 = 0x00000035;
    /// `Mceliece8192128`
    pub const MCELIECE_8192128: u32 = 0x00000036;
    /// `ED25519`
    pub const ED25519: u32 = 0x00000037;
    /// `ED448`
    pub const ED448: u32 = 0x00000038;
}

const CRYPTOGRAPHIC_ALGORITHM_NAMES: &[(u32, &str)] = &[
    (0x00000001, "DES"),
    (0x00000002, "TripleDES"),
    (0x00000003, "AES"),
    (0x00000004, "RSA"),
    (0x00000005, "DSA"),
    (0x00000006, "ECDSA"),
    (0x00000007, "HMACSHA1"),
    (0x00000008, "HMACSHA224"),
    (0x00000009, "HMACSHA256"),
    (0x0000000A, "HMACSHA384"),
    (0x0000000B, "HMACSHA512"),
    (0x0000000C, "HMACMD5"),
    (0x0000000D, "DH"),
    (0x0000000E, "ECDH"),
    (0x0000000F, "ECMQV"),
    (0x00000010, "Blowfish"),
    (0x00000011, "Camellia"),
    (0x00000012, "Cast5"),
    (0x00000013, "Idea"),
    (0x00000014, "Mars"),
    (0x00000015, "RC2"),
    (0x00000016, "RC4"),
    (0x00000017, "RC5"),
    (0x00000018, "Skipjack"),
    (0x00000019, "Twofish"),
    (0x0000001A, "EC"),
    (0x0000001B, "OneTimePad"),
    (0x0000001C, "CHACHA20"),
    (0x0000001D, "POLY1305"),
    (0x0000001E, "CHACHA20POLY1305"),
    (0x0000001F, "SHA3224"),
    (0x00000020, "SHA3256"),
    (0x00000021, "SHA3384"),
    (0x00000022, "SHA3512"),
    (0x00000023, "HMACSHA3224"),
    (0x00000024, "HMACSHA3256"),
    (0x00000025, "HMACSHA3384"),
    (0x00000026, "HMACSHA3512"),
    (0x00000027, "SHAKE128"),
    (0x00000028, "SHAKE256"),
    (0x00000029, "ARIA"),
    (0x0000002A, "SEED"),
    (0x0000002B, "SM2"),
    (0x0000002C, "SM3"),
    (0x0000002D, "SM4"),
    (0x0000002E, "GOSTR34102012"),
    (0x0000002F, "GOSTR34112012"),
    (0x00000030, "GOSTR34132015"),
    (0x00000031, "GOST2814789"),
    (0x00000032, "XMSS"),
    (0x00000033, "Sphincs256"),
    (0x00000034, "Mceliece"),
    (0x00000035, "Mceliece6960119"),
    (0x00000036, "Mceliece8192128"),
    (0x00000037, "ED25519"),
    (0x00000038, "ED448"),
];

/// The `KeyFormatType` enumeration.
pub mod key_format_type {
    /// `Raw`
    pub const RAW: u32 = 0x00000001;
    /// `Opaque`
    pub const OPAQUE: u32 = 0x00000002;
    /// `PKCS1`
    pub const PKCS_1: u32 = 0x00000003;
    /// `PKCS8`
    pub const PKCS_8: u32 = 0x00000004;
    /// `X509`
    pub const X_509: u32 = 0x00000005;
    /// `ECPrivateKey`
    pub const EC_PRIVATE_KEY: u32 = 0x00000006;
    /// `TransparentSymmetricKey`
    pub const TRANSPARENT_SYMMETRIC_KEY: u32 = 0x00000007;
    /// `TransparentDSAPrivateKey`
    pub const TRANSPARENT_DSA_PRIVATE_KEY: u32 = 0x00000008;
    /// `TransparentDSAPublicKey`
    pub const TRANSPARENT_DSA_PUBLIC_KEY: u32 = 0x00000009;
    /// `TransparentRSAPrivateKey`
    pub const TRANSPARENT_RSA_PRIVATE_KEY: u32 = 0x0000000A;
    /// `TransparentRSAPublicKey`
    pub const TRANSPARENT_RSA_PUBLIC_KEY: u32 = 0x0000000B;
    /// `TransparentDHPrivateKey`
    pub const TRANSPARENT_DH_PRIVATE_KEY: u32 = 0x0000000C;
    /// `TransparentDHPublicKey`
    pub const TRANSPARENT_DH_PUBLIC_KEY: u32 = 0x0000000D;
    /// `TransparentECDSAPrivateKey`
    pub const TRANSPARENT_ECDSA_PRIVATE_KEY: u32 = 0x0000000E;
    /// `TransparentECDSAPublicKey`
    pub const TRANSPARENT_ECDSA_PUBLIC_KEY: u32 = 0x0000000F;
    /// `TransparentECDHPrivateKey`
    pub const TRANSPARENT_ECDH_PRIVATE_KEY: u32 = 0x00000010;
    /// `TransparentECDHPublicKey`
    pub const TRANSPARENT_ECDH_PUBLIC_KEY: u32 = 0x00000011;
    /// `TransparentECMQVPrivateKey`
    pub const TRANSPARENT_ECMQV_PRIVATE_KEY: u32 = 0x00000012;
    /// `TransparentECMQVPublicKey`
    pub const TRANSPARENT_ECMQV_PUBLIC_KEY: u32 = 0x00000013;
    /// `TransparentECPrivateKey`
    pub const TRANSPARENT_EC_PRIVATE_KEY: u32 = 0x00000014;
    /// `TransparentECPublicKey`
    pub const TRANSPARENT_EC_PUBLIC_KEY: u32 = 0x00000015;
    /// `PKCS12`
    pub const PKCS_12: u32 = 0x00000016;
}

const KEY_FORMAT_TYPE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Raw"),
    (0x00000002, "Opaque"),
    (0x00000003, "PKCS1"),
    (0x00000004, "PKCS8"),
    (0x00000005, "X509"),
    (0x00000006, "ECPrivateKey"),
    (0x00000007, "TransparentSymmetricKey"),
    (0x00000008, "TransparentDSAPrivateKey"),
    (0x00000009, "TransparentDSAPublicKey"),
    (0x0000000A, "TransparentRSAPrivateKey"),
    (0x0000000B, "TransparentRSAPublicKey"),
    (0x0000000C, "TransparentDHPrivateKey"),
    (0x0000000D, "TransparentDHPublicKey"),
    (0x0000000E, "TransparentECDSAPrivateKey"),
    (0x0000000F, "TransparentECDSAPublicKey"),
    (0x00000010, "TransparentECDHPrivateKey"),
    (0x00000011, "TransparentECDHPublicKey"),
    (0x00000012, "TransparentECMQVPrivateKey"),
    (0x00000013, "TransparentECMQVPublicKey"),
    (0x00000014, "TransparentECPrivateKey"),
    (0x00000015, "TransparentECPublicKey"),
    (0x00000016, "PKCS12"),
];

/// The bits of the `CryptographicUsageMask` (KMIP 1.4 §9.1.3.3.1, KMIP 2.1 §11.15).
pub mod cryptographic_usage_mask {
    /// `Sign`
    pub const SIGN: i32 = 0x00000001;
    /// `Verify`
    pub const VERIFY: i32 = 0x00000002;
    /// `Encrypt`
    pub const ENCRYPT: i32 = 0x00000004;
    /// `Decrypt`
    pub const DECRYPT: i32 = 0x00000008;
    /// `WrapKey`
    pub const WRAP_KEY: i32 = 0x00000010;
    /// `UnwrapKey`
    pub const UNWRAP_KEY: i32 = 0x00000020;
    /// `Export`
    pub const EXPORT: i32 = 0x00000040;
    /// `MACGenerate`
    pub const MAC_GENERATE: i32 = 0x00000080;
    /// `MACVerify`
    pub const MAC_VERIFY: i32 = 0x00000100;
    /// `DeriveKey`
    pub const DERIVE_KEY: i32 = 0x00000200;
    /// `ContentCommitment`
    pub const CONTENT_COMMITMENT: i32 = 0x00000400;
    /// `KeyAgreement`
    pub const KEY_AGREEMENT: i32 = 0x00000800;
    /// `CertificateSign`
    pub const CERTIFICATE_SIGN: i32 = 0x00001000;
    /// `CRLSign`
    pub const CRL_SIGN: i32 = 0x00002000;
    /// `GenerateCryptogram`
    pub const GENERATE_CRYPTOGRAM: i32 = 0x00004000;
    /// `ValidateCryptogram`
    pub const VALIDATE_CRYPTOGRAM: i32 = 0x00008000;
    /// `TranslateEncrypt`
    pub const TRANSLATE_ENCRYPT: i32 = 0x00010000;
    /// `TranslateDecrypt`
    pub const TRANSLATE_DECRYPT: i32 = 0x00020000;
    /// `TranslateWrap`
    pub const TRANSLATE_WRAP: i32 = 0x00040000;
    /// `TranslateUnwrap`
    pub const TRANSLATE_UNWRAP: i32 = 0x00080000;
    /// `Authenticate`
    pub const AUTHENTICATE: i32 = 0x00100000;
    /// `Unrestricted`
    pub const UNRESTRICTED: i32 = 0x00200000;
    /// `FPEEncrypt`
    pub const FPE_ENCRYPT: i32 = 0x00400000;
    /// `FPEDecrypt`
    pub const FPE_DECRYPT: i32 = 0x00800000;
}

/// The names of the `CryptographicUsageMask` bits, as the XML and JSON encodings write them.
pub const CRYPTOGRAPHIC_USAGE_MASK_NAMES: &[(i32, &str)] = &[
    (0x00000001, "Sign"),
    (0x00000002, "Verify"),
    (0x00000004, "Encrypt"),
    (0x00000008, "Decrypt"),
    (0x00000010, "WrapKey"),
    (0x00000020, "UnwrapKey"),
    (0x00000040, "Export"),
    (0x00000080, "MACGenerate"),
    (0x00000100, "MACVerify"),
    (0x00000200, "DeriveKey"),
    (0x00000400, "ContentCommitment"),
    (0x00000800, "KeyAgreement"),
    (0x00001000, "CertificateSign"),
    (0x00002000, "CRLSign"),
    (0x00004000, "GenerateCryptogram"),
    (0x00008000, "ValidateCryptogram"),
    (0x00010000, "TranslateEncrypt"),
    (0x00020000, "TranslateDecrypt"),
    (0x00040000, "TranslateWrap"),
    (0x00080000, "TranslateUnwrap"),
    (0x00100000, "Authenticate"),
    (0x00200000, "Unrestricted"),
    (0x00400000, "FPEEncrypt"),
    (0x00800000, "FPEDecrypt"),
];

/// The `State` enumeration.
pub mod state {
    /// `PreActive`
    pub const PRE_ACTIVE: u32 = 0x00000001;
    /// `Active`
    pub const ACTIVE: u32 = 0x00000002;
    /// `Deactivated`
    pub const DEACTIVATED: u32 = 0x00000003;
    /// `Compromised`
    pub const COMPROMISED: u32 = 0x00000004;
    /// `Destroyed`
    pub const DESTROYED: u32 = 0x00000005;
    /// `DestroyedCompromised`
    pub const DESTROYED_COMPROMISED: u32 = 0x00000006;
}

const STATE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "PreActive"),
    (0x00000002, "Active"),
    (0x00000003, "Deactivated"),
    (0x00000004, "Compromised"),
    (0x00000005, "Destroyed"),
    (0x00000006, "DestroyedCompromised"),
];

/// The `RevocationReasonCode` enumeration.
pub mod revocation_reason_code {
    /// `Unspecified`
    pub const UNSPECIFIED: u32 = 0x00000001;
    /// `KeyCompromise`
    pub const KEY_COMPROMISE: u32 = 0x00000002;
    /// `CaCompromise`
    pub const CA_COMPROMISE: u32 = 0x00000003;
    /// `AffiliationChanged`
    pub const AFFILIATION_CHANGED: u32 = 0x00000004;
    /// `Superseded`
    pub const SUPERSEDED: u32 = 0x00000005;
    /// `CessationOfOperation`
    pub const CESSATION_OF_OPERATION: u32 = 0x00000006;
    /// `PrivilegeWithdrawn`
    pub const PRIVILEGE_WITHDRAWN: u32 = 0x00000007;
}

const REVOCATION_REASON_CODE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Unspecified"),
    (0x00000002, "KeyCompromise"),
    (0x00000003, "CaCompromise"),
    (0x00000004, "AffiliationChanged"),
    (0x00000005, "Superseded"),
    (0x00000006, "CessationOfOperation"),
    (0x00000007, "PrivilegeWithdrawn"),
];

/// The `RNGAlgorithm` enumeration (KMIP 1.3 §9.1.3.2.53).
pub mod rng_algorithm {
    /// `DRBG`
    pub const DRBG: u32 = 0x00000003;
}

const RNG_ALGORITHM_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Unspecified"),
    (0x00000002, "FIPS1862"),
    (0x00000003, "DRBG"),
    (0x00000004, "NRBG"),
    (0x00000005, "ANSIX931"),
    (0x00000006, "ANSIX962"),
];

/// The `DRBGAlgorithm` enumeration (KMIP 1.3 §9.1.3.2.54).
pub mod drbg_algorithm {
    /// `CTR`
    pub const CTR: u32 = 0x00000005;
}

const DRBG_ALGORITHM_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Unspecified"),
    (0x00000002, "DualEC"),
    (0x00000003, "Hash"),
    (0x00000004, "HMAC"),
    (0x00000005, "CTR"),
];

/// The `NameType` enumeration.
pub mod name_type {
    /// `UninterpretedTextString`
    pub const UNINTERPRETED_TEXT_STRING: u32 = 0x00000001;
    /// `URI`
    pub const URI: u32 = 0x00000002;
}

const NAME_TYPE_NAMES: &[(u32, &str)] =
    &[(0x00000001, "UninterpretedTextString"), (0x00000002, "URI")];

/// The `QueryFunction` enumeration.
pub mod query_function {
    /// `QueryOperations`
    pub const QUERY_OPERATIONS: u32 = 0x00000001;
    /// `QueryObjects`
    pub const QUERY_OBJECTS: u32 = 0x00000002;
    /// `QueryServerInformation`
    pub const QUERY_SERVER_INFORMATION: u32 = 0x00000003;
    /// `QueryApplicationNamespaces`
    pub const QUERY_APPLICATION_NAMESPACES: u32 = 0x00000004;
    /// `QueryExtensionList`
    pub const QUERY_EXTENSION_LIST: u32 = 0x00000005;
    /// `QueryExtensionMap`
    pub const QUERY_EXTENSION_MAP: u32 = 0x00000006;
    /// `QueryAttestationTypes`
    pub const QUERY_ATTESTATION_TYPES: u32 = 0x00000007;
    /// `QueryRngs`
    pub const QUERY_RNGS: u32 = 0x00000008;
    /// `QueryValidations`
    pub const QUERY_VALIDATIONS: u32 = 0x00000009;
    /// `QueryProfiles`
    pub const QUERY_PROFILES: u32 = 0x0000000A;
    /// `QueryCapabilities`
    pub const QUERY_CAPABILITIES: u32 = 0x0000000B;
    /// `QueryClientRegistrationMethods`
    pub const QUERY_CLIENT_REGISTRATION_METHODS: u32 = 0x0000000C;
    /// `QueryDefaultsInformation`
    pub const QUERY_DEFAULTS_INFORMATION: u32 = 0x0000000D;
    /// `QueryStorageProtectionMasks`
    pub const QUERY_STORAGE_PROTECTION_MASKS: u32 = 0x0000000E;
}

const QUERY_FUNCTION_NAMES: &[(u32, &str)] = &[
    (0x00000001, "QueryOperations"),
    (0x00000002, "QueryObjects"),
    (0x00000003, "QueryServerInformation"),
    (0x00000004, "QueryApplicationNamespaces"),
    (0x00000005, "QueryExtensionList"),
    (0x00000006, "QueryExtensionMap"),
    (0x00000007, "QueryAttestationTypes"),
    (0x00000008, "QueryRngs"),
    (0x00000009, "QueryValidations"),
    (0x0000000A, "QueryProfiles"),
    (0x0000000B, "QueryCapabilities"),
    (0x0000000C, "QueryClientRegistrationMethods"),
    (0x0000000D, "QueryDefaultsInformation"),
    (0x0000000E, "QueryStorageProtectionMasks"),
];

/// The `BlockCipherMode` enumeration.
pub mod block_cipher_mode {
    /// `CBC`
    pub const CBC: u32 = 0x00000001;
    /// `ECB`
    pub const ECB: u32 = 0x00000002;
    /// `PCBC`
    pub const PCBC: u32 = 0x00000003;
    /// `CFB`
    pub const CFB: u32 = 0x00000004;
    /// `OFB`
    pub const OFB: u32 = 0x00000005;
    /// `CTR`
    pub const CTR: u32 = 0x00000006;
    /// `CMAC`
    pub const CMAC: u32 = 0x00000007;
    /// `CCM`
    pub const CCM: u32 = 0x00000008;
    /// `GCM`
    pub const GCM: u32 = 0x00000009;
    /// `CBCMAC`
    pub const CBC_MAC: u32 = 0x0000000A;
    /// `XTS`
    pub const XTS: u32 = 0x0000000B;
    /// `AESKeyWrapPadding`
    pub const AES_KEY_WRAP_PADDING: u32 = 0x0000000C;
    /// `NISTKeyWrap`
    pub const NIST_KEY_WRAP: u32 = 0x0000000D;
    /// `X9102Aeskw`
    pub const X9_102_AESKW: u32 = 0x0000000E;
    /// `X9102Tdkw`
    pub const X9_102_TDKW: u32 = 0x0000000F;
    /// `X9102Akw1`
    pub const X9_102_AKW1: u32 = 0x00000010;
    /// `X9102Akw2`
    pub const X9_102_AKW2: u32 = 0x00000011;
    /// `AEAD`
    pub const AEAD: u32 = 0x00000012;
}

const BLOCK_CIPHER_MODE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "CBC"),
    (0x00000002, "ECB"),
    (0x00000003, "PCBC"),
    (0x00000004, "CFB"),
    (0x00000005, "OFB"),
    (0x00000006, "CTR"),
    (0x00000007, "CMAC"),
    (0x00000008, "CCM"),
    (0x00000009, "GCM"),
    (0x0000000A, "CBCMAC"),
    (0x0000000B, "XTS"),
    (0x0000000C, "AESKeyWrapPadding"),
    (0x0000000D, "NISTKeyWrap"),
    (0x0000000E, "X9102Aeskw"),
    (0x0000000F, "X9102Tdkw"),
    (0x00000010, "X9102Akw1"),
    (0x00000011, "X9102Akw2"),
    (0x00000012, "AEAD"),
];

/// The `PaddingMethod` enumeration.
pub mod padding_method {
    /// `None`
    pub const NONE: u32 = 0x00000001;
    /// `OAEP`
    pub const OAEP: u32 = 0x00000002;
    /// `PKCS5`
    pub const PKCS5: u32 = 0x00000003;
    /// `SSL3`
    pub const SSL3: u32 = 0x00000004;
    /// `Zeros`
    pub const ZEROS: u32 = 0x00000005;
    /// `ANSIX923`
    pub const ANSI_X923: u32 = 0x00000006;
    /// `Iso10126`
    pub const ISO_10126: u32 = 0x00000007;
    /// `Pkcs1v15`
    pub const PKCS1V15: u32 = 0x00000008;
    /// `X931`
    pub const X931: u32 = 0x00000009;
    /// `PSS`
    pub const PSS: u32 = 0x0000000A;
}

const PADDING_METHOD_NAMES: &[(u32, &str)] = &[
    (0x00000001, "None"),
    (0x00000002, "OAEP"),
    (0x00000003, "PKCS5"),
    (0x00000004, "SSL3"),
    (0x00000005, "Zeros"),
    (0x00000006, "ANSIX923"),
    (0x00000007, "Iso10126"),
    (0x00000008, "Pkcs1v15"),
    (0x00000009, "X931"),
    (0x0000000A, "PSS"),
];

/// The `HashingAlgorithm` enumeration.
pub mod hashing_algorithm {
    /// `MD2`
    pub const MD2: u32 = 0x00000001;
    /// `MD4`
    pub const MD4: u32 = 0x00000002;
    /// `MD5`
    pub const MD5: u32 = 0x00000003;
    /// `Sha1`
    pub const SHA_1: u32 = 0x00000004;
    /// `Sha224`
    pub const SHA_224: u32 = 0x00000005;
    /// `Sha256`
    pub const SHA_256: u32 = 0x00000006;
    /// `Sha384`
    pub const SHA_384: u32 = 0x00000007;
    /// `Sha512`
    pub const SHA_512: u32 = 0x00000008;
    /// `Ripemd160`
    pub const RIPEMD_160: u32 = 0x00000009;
    /// `Tiger`
    pub const TIGER: u32 = 0x0000000A;
    /// `Whirlpool`
    pub const WHIRLPOOL: u32 = 0x0000000B;
    /// `Sha512224`
    pub const SHA_512_224: u32 = 0x0000000C;
    /// `Sha512256`
    pub const SHA_512_256: u32 = 0x0000000D;
    /// `SHA3224`
    pub const SHA3_224: u32 = 0x0000000E;
    /// `SHA3256`
    pub const SHA3_256: u32 = 0x0000000F;
    /// `SHA3384`
    pub const SHA3_384: u32 = 0x00000010;
    /// `SHA3512`
    pub const SHA3_512: u32 = 0x00000011;
}

const HASHING_ALGORITHM_NAMES: &[(u32, &str)] = &[
    (0x00000001, "MD2"),
    (0x00000002, "MD4"),
    (0x00000003, "MD5"),
    (0x00000004, "Sha1"),
    (0x00000005, "Sha224"),
    (0x00000006, "Sha256"),
    (0x00000007, "Sha384"),
    (0x00000008, "Sha512"),
    (0x00000009, "Ripemd160"),
    (0x0000000A, "Tiger"),
    (0x0000000B, "Whirlpool"),
    (0x0000000C, "Sha512224"),
    (0x0000000D, "Sha512256"),
    (0x0000000E, "SHA3224"),
    (0x0000000F, "SHA3256"),
    (0x00000010, "SHA3384"),
    (0x00000011, "SHA3512"),
];

/// The `LinkType` enumeration.
pub mod link_type {
    /// `CertificateLink`
    pub const CERTIFICATE_LINK: u32 = 0x00000101;
    /// `PublicKeyLink`
    pub const PUBLIC_KEY_LINK: u32 = 0x00000102;
    /// `PrivateKeyLink`
    pub const PRIVATE_KEY_LINK: u32 = 0x00000103;
    /// `DerivationBaseObjectLink`
    pub const DERIVATION_BASE_OBJECT_LINK: u32 = 0x00000104;
    /// `DerivedKeyLink`
    pub const DERIVED_KEY_LINK: u32 = 0x00000105;
    /// `ReplacementObjectLink`
    pub const REPLACEMENT_OBJECT_LINK: u32 = 0x00000106;
    /// `ReplacedObjectLink`
    pub const REPLACED_OBJECT_LINK: u32 = 0x00000107;
    /// `ParentLink`
    pub const PARENT_LINK: u32 = 0x00000108;
    /// `ChildLink`
    pub const CHILD_LINK: u32 = 0x00000109;
    /// `PreviousLink`
    pub const PREVIOUS_LINK: u32 = 0x0000010A;
    /// `NextLink`
    pub const NEXT_LINK: u32 = 0x0000010B;
    /// `PKCS12CertificateLink`
    pub const PKCS12_CERTIFICATE_LINK: u32 = 0x0000010C;
    /// `PKCS12PasswordLink`
    pub const PKCS12_PASSWORD_LINK: u32 = 0x0000010D;
    /// `WrappingKeyLink`
    pub const WRAPPING_KEY_LINK: u32 = 0x0000010E;
}

const LINK_TYPE_NAMES: &[(u32, &str)] = &[
    (0x00000101, "CertificateLink"),
    (0x00000102, "PublicKeyLink"),
    (0x00000103, "PrivateKeyLink"),
    (0x00000104, "DerivationBaseObjectLink"),
    (0x00000105, "DerivedKeyLink"),
    (0x00000106, "ReplacementObjectLink"),
    (0x00000107, "ReplacedObjectLink"),
    (0x00000108, "ParentLink"),
    (0x00000109, "ChildLink"),
    (0x0000010A, "PreviousLink"),
    (0x0000010B, "NextLink"),
    (0x0000010C, "PKCS12CertificateLink"),
    (0x0000010D, "PKCS12PasswordLink"),
    (0x0000010E, "WrappingKeyLink"),
];

/// The `SecretDataType` enumeration.
pub mod secret_data_type {
    /// `Password`
    pub const PASSWORD: u32 = 0x00000001;
    /// `SEED`
    pub const SEED: u32 = 0x00000002;
}

const SECRET_DATA_TYPE_NAMES: &[(u32, &str)] = &[(0x00000001, "Password"), (0x00000002, "SEED")];

/// The `OpaqueDataType` enumeration.
pub mod opaque_data_type {
    /// `None`
    pub const NONE: u32 = 0x80000000;
}

const OPAQUE_DATA_TYPE_NAMES: &[(u32, &str)] = &[(0x80000000, "None")];

/// The `RecommendedCurve` enumeration.
pub mod recommended_curve {
    /// `P192`
    pub const P_192: u32 = 0x00000001;
    /// `K163`
    pub const K_163: u32 = 0x00000002;
    /// `B163`
    pub const B_163: u32 = 0x00000003;
    /// `P224`
    pub const P_224: u32 = 0x00000004;
    /// `K233`
    pub const K_233: u32 = 0x00000005;
    /// `B233`
    pub const B_233: u32 = 0x00000006;
    /// `P256`
    pub const P_256: u32 = 0x00000007;
    /// `K283`
    pub const K_283: u32 = 0x00000008;
    /// `B283`
    pub const B_283: u32 = 0x00000009;
    /// `P384`
    pub const P_384: u32 = 0x0000000A;
    /// `K409`
    pub const K_409: u32 = 0x0000000B;
    /// `B409`
    pub const B_409: u32 = 0x0000000C;
    /// `P521`
    pub const P_521: u32 = 0x0000000D;
    /// `K571`
    pub const K_571: u32 = 0x0000000E;
    /// `B571`
    pub const B_571: u32 = 0x0000000F;
    /// `Secp112r1`
    pub const SECP112R1: u32 = 0x00000010;
    /// `Secp112r2`
    pub const SECP112R2: u32 = 0x00000011;
    /// `Secp128r1`
    pub const SECP128R1: u32 = 0x00000012;
    /// `Secp128r2`
    pub const SECP128R2: u32 = 0x00000013;
    /// `Secp160k1`
    pub const SECP160K1: u32 = 0x00000014;
    /// `Secp160r1`
    pub const SECP160R1: u32 = 0x00000015;
    /// `Secp160r2`
    pub const SECP160R2: u32 = 0x00000016;
    /// `Secp191k1`
    pub const SECP191K1: u32 = 0x00000017;
    /// `Secp224k1`
    pub const SECP224K1: u32 = 0x00000018;
    /// `Secp256k1`
    pub const SECP256K1: u32 = 0x00000019;
    /// `Sect113r1`
    pub const SECT113R1: u32 = 0x0000001A;
    /// `Sect113r2`
    pub const SECT113R2: u32 = 0x0000001B;
    /// `Sect131r1`
    pub const SECT131R1: u32 = 0x0000001C;
    /// `Sect131r2`
    pub const SECT131R2: u32 = 0x0000001D;
    /// `Sect163r1`
    pub const SECT163R1: u32 = 0x0000001E;
    /// `Sect193r1`
    pub const SECT193R1: u32 = 0x0000001F;
    /// `Sect193r2`
    pub const SECT193R2: u32 = 0x00000020;
    /// `Sect239k1`
    pub const SECT239K1: u32 = 0x00000021;
    /// `Ansix9p192v2`
    pub const ANSIX9P192V2: u32 = 0x00000022;
    /// `Ansix9p192v3`
    pub const ANSIX9P192V3: u32 = 0x00000023;
    /// `Ansix9p239v1`
    pub const ANSIX9P239V1: u32 = 0x00000024;
    /// `Ansix9p239v2`
    pub const ANSIX9P239V2: u32 = 0x00000025;
    /// `Ansix9p239v3`
    pub const ANSIX9P239V3: u32 = 0x00000026;
    /// `Ansix9c2pnb163v1`
    pub const ANSIX9C2PNB163V1: u32 = 0x00000027;
    /// `Ansix9c2pnb163v2`
    pub const ANSIX9C2PNB163V2: u32 = 0x00000028;
    /// `Ansix9c2pnb163v3`
    pub const ANSIX9C2PNB163V3: u32 = 0x00000029;
    /// `Ansix9c2pnb176v1`
    pub const ANSIX9C2PNB176V1: u32 = 0x0000002A;
    /// `Ansix9c2tnb191v1`
    pub const ANSIX9C2TNB191V1: u32 = 0x0000002B;
    /// `Ansix9c2tnb191v2`
    pub const ANSIX9C2TNB191V2: u32 = 0x0000002C;
    /// `Ansix9c2tnb191v3`
    pub const ANSIX9C2TNB191V3: u32 = 0x0000002D;
    /// `Ansix9c2pnb208w1`
    pub const ANSIX9C2PNB208W1: u32 = 0x0000002E;
    /// `Ansix9c2tnb239v1`
    pub const ANSIX9C2TNB239V1: u32 = 0x0000002F;
    /// `Ansix9c2tnb239v2`
    pub const ANSIX9C2TNB239V2: u32 = 0x00000030;
    /// `Ansix9c2tnb239v3`
    pub const ANSIX9C2TNB239V3: u32 = 0x00000031;
    /// `Ansix9c2pnb272w1`
    pub const ANSIX9C2PNB272W1: u32 = 0x00000032;
    /// `Ansix9c2pnb304w1`
    pub const ANSIX9C2PNB304W1: u32 = 0x00000033;
    /// `Ansix9c2tnb359v1`
    pub const ANSIX9C2TNB359V1: u32 = 0x00000034;
    /// `Ansix9c2pnb368w1`
    pub const ANSIX9C2PNB368W1: u32 = 0x00000035;
    /// `Ansix9c2tnb431r1`
    pub const ANSIX9C2TNB431R1: u32 = 0x00000036;
    /// `Brainpoolp160r1`
    pub const BRAINPOOLP160R1: u32 = 0x00000037;
    /// `Brainpoolp160t1`
    pub const BRAINPOOLP160T1: u32 = 0x00000038;
    /// `Brainpoolp192r1`
    pub const BRAINPOOLP192R1: u32 = 0x00000039;
    /// `Brainpoolp192t1`
    pub const BRAINPOOLP192T1: u32 = 0x0000003A;
    /// `Brainpoolp224r1`
    pub const BRAINPOOLP224R1: u32 = 0x0000003B;
    /// `Brainpoolp224t1`
    pub const BRAINPOOLP224T1: u32 = 0x0000003C;
    /// `Brainpoolp256r1`
    pub const BRAINPOOLP256R1: u32 = 0x0000003D;
    /// `Brainpoolp256t1`
    pub const BRAINPOOLP256T1: u32 = 0x0000003E;
    /// `Brainpoolp320r1`
    pub const BRAINPOOLP320R1: u32 = 0x0000003F;
    /// `Brainpoolp320t1`
    pub const BRAINPOOLP320T1: u32 = 0x00000040;
    /// `Brainpoolp384r1`
    pub const BRAINPOOLP384R1: u32 = 0x00000041;
    /// `Brainpoolp384t1`
    pub const BRAINPOOLP384T1: u32 = 0x00000042;
    /// `Brainpoolp512r1`
    pub const BRAINPOOLP512R1: u32 = 0x00000043;
    /// `Brainpoolp512t1`
    pub const BRAINPOOLP512T1: u32 = 0x00000044;
    /// `Curve25519`
    pub const CURVE25519: u32 = 0x00000045;
    /// `Curve448`
    pub const CURVE448: u32 = 0x00000046;
}

const RECOMMENDED_CURVE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "P192"),
    (0x00000002, "K163"),
    (0x00000003, "B163"),
    (0x00000004, "P224"),
    (0x00000005, "K233"),
    (0x00000006, "B233"),
    (0x00000007, "P256"),
    (0x00000008, "K283"),
    (0x00000009, "B283"),
    (0x0000000A, "P384"),
    (0x0000000B, "K409"),
    (0x0000000C, "B409"),
    (0x0000000D, "P521"),
    (0x0000000E, "K571"),
    (0x0000000F, "B571"),
    (0x00000010, "Secp112r1"),
    (0x00000011, "Secp112r2"),
    (0x00000012, "Secp128r1"),
    (0x00000013, "Secp128r2"),
    (0x00000014, "Secp160k1"),
    (0x00000015, "Secp160r1"),
    (0x00000016, "Secp160r2"),
    (0x00000017, "Secp191k1"),
    (0x00000018, "Secp224k1"),
    (0x00000019, "Secp256k1"),
    (0x0000001A, "Sect113r1"),
    (0x0000001B, "Sect113r2"),
    (0x0000001C, "Sect131r1"),
    (0x0000001D, "Sect131r2"),
    (0x0000001E, "Sect163r1"),
    (0x0000001F, "Sect193r1"),
    (0x00000020, "Sect193r2"),
    (0x00000021, "Sect239k1"),
    (0x00000022, "Ansix9p192v2"),
    (0x00000023, "Ansix9p192v3"),
    (0x00000024, "Ansix9p239v1"),
    (0x00000025, "Ansix9p239v2"),
    (0x00000026, "Ansix9p239v3"),
    (0x00000027, "Ansix9c2pnb163v1"),
    (0x00000028, "Ansix9c2pnb163v2"),
    (0x00000029, "Ansix9c2pnb163v3"),
    (0x0000002A, "Ansix9c2pnb176v1"),
    (0x0000002B, "Ansix9c2tnb191v1"),
    (0x0000002C, "Ansix9c2tnb191v2"),
    (0x0000002D, "Ansix9c2tnb191v3"),
    (0x0000002E, "Ansix9c2pnb208w1"),
    (0x0000002F, "Ansix9c2tnb239v1"),
    (0x00000030, "Ansix9c2tnb239v2"),
    (0x00000031, "Ansix9c2tnb239v3"),
    (0x00000032, "Ansix9c2pnb272w1"),
    (0x00000033, "Ansix9c2pnb304w1"),
    (0x00000034, "Ansix9c2tnb359v1"),
    (0x00000035, "Ansix9c2pnb368w1"),
    (0x00000036, "Ansix9c2tnb431r1"),
    (0x00000037, "Brainpoolp160r1"),
    (0x00000038, "Brainpoolp160t1"),
    (0x00000039, "Brainpoolp192r1"),
    (0x0000003A, "Brainpoolp192t1"),
    (0x0000003B, "Brainpoolp224r1"),
    (0x0000003C, "Brainpoolp224t1"),
    (0x0000003D, "Brainpoolp256r1"),
    (0x0000003E, "Brainpoolp256t1"),
    (0x0000003F, "Brainpoolp320r1"),
    (0x00000040, "Brainpoolp320t1"),
    (0x00000041, "Brainpoolp384r1"),
    (0x00000042, "Brainpoolp384t1"),
    (0x00000043, "Brainpoolp512r1"),
    (0x00000044, "Brainpoolp512t1"),
    (0x00000045, "Curve25519"),
    (0x00000046, "Curve448"),
];

/// The `DigitalSignatureAlgorithm` enumeration.
pub mod digital_signature_algorithm {
    /// `MD2WithRSAEncryption`
    pub const MD2_WITH_RSA_ENCRYPTION: u32 = 0x00000001;
    /// `MD5WithRSAEncryption`
    pub const MD5_WITH_RSA_ENCRYPTION: u32 = 0x00000002;
    /// `SHA1WithRSAEncryption`
    pub const SHA1_WITH_RSA_ENCRYPTION: u32 = 0x00000003;
    /// `SHA224WithRSAEncryption`
    pub const SHA224_WITH_RSA_ENCRYPTION: u32 = 0x00000004;
    /// `SHA256WithRSAEncryption`
    pub const SHA256_WITH_RSA_ENCRYPTION: u32 = 0x00000005;
    /// `SHA384WithRSAEncryption`
    pub const SHA384_WITH_RSA_ENCRYPTION: u32 = 0x00000006;
    /// `SHA512WithRSAEncryption`
    pub const SHA512_WITH_RSA_ENCRYPTION: u32 = 0x00000007;
    /// `RsassaPSS`
    pub const RSASSA_PSS: u32 = 0x00000008;
    /// `DSAWithSHA1`
    pub const DSA_WITH_SHA1: u32 = 0x00000009;
    /// `DSAWithSHA224`
    pub const DSA_WITH_SHA224: u32 = 0x0000000A;
    /// `DSAWithSHA256`
    pub const DSA_WITH_SHA256: u32 = 0x0000000B;
    /// `ECDSAWithSHA1`
    pub const ECDSA_WITH_SHA1: u32 = 0x0000000C;
    /// `ECDSAWithSHA224`
    pub const ECDSA_WITH_SHA224: u32 = 0x0000000D;
    /// `ECDSAWithSHA256`
    pub const ECDSA_WITH_SHA256: u32 = 0x0000000E;
    /// `ECDSAWithSHA384`
    pub const ECDSA_WITH_SHA384: u32 = 0x0000000F;
    /// `ECDSAWithSHA512`
    pub const ECDSA_WITH_SHA512: u32 = 0x00000010;
    /// `SHA3256WithRSAEncryption`
    pub const SHA3_256_WITH_RSA_ENCRYPTION: u32 = 0x00000011;
    /// `SHA3384WithRSAEncryption`
    pub const SHA3_384_WITH_RSA_ENCRYPTION: u32 = 0x00000012;
    /// `SHA3512WithRSAEncryption`
    pub const SHA3_512_WITH_RSA_ENCRYPTION: u32 = 0x00000013;
}

const DIGITAL_SIGNATURE_ALGORITHM_NAMES: &[(u32, &str)] = &[
    (0x00000001, "MD2WithRSAEncryption"),
    (0x00000002, "MD5WithRSAEncryption"),
    (0x00000003, "SHA1WithRSAEncryption"),
    (0x00000004, "SHA224WithRSAEncryption"),
    (0x00000005, "SHA256WithRSAEncryption"),
    (0x00000006, "SHA384WithRSAEncryption"),
    (0x00000007, "SHA512WithRSAEncryption"),
    (0x00000008, "RsassaPSS"),
    (0x00000009, "DSAWithSHA1"),
    (0x0000000A, "DSAWithSHA224"),
    (0x0000000B, "DSAWithSHA256"),
    (0x0000000C, "ECDSAWithSHA1"),
    (0x0000000D, "ECDSAWithSHA224"),
    (0x0000000E, "ECDSAWithSHA256"),
    (0x0000000F, "ECDSAWithSHA384"),
    (0x00000010, "ECDSAWithSHA512"),
    (0x00000011, "SHA3256WithRSAEncryption"),
    (0x00000012, "SHA3384WithRSAEncryption"),
    (0x00000013, "SHA3512WithRSAEncryption"),
];

/// The `CertificateType` enumeration.
pub mod certificate_type {
    /// `X509`
    pub const X_509: u32 = 0x00000001;
    /// `PGP`
    pub const PGP: u32 = 0x00000002;
}

const CERTIFICATE_TYPE_NAMES: &[(u32, &str)] = &[(0x00000001, "X509"), (0x00000002, "PGP")];

/// The `CertificateRequestType` enumeration.
pub mod certificate_request_type {
    /// `CRMF`
    pub const CRMF: u32 = 0x00000001;
    /// `PKCS10`
    pub const PKCS10: u32 = 0x00000002;
    /// `PEM`
    pub const PEM: u32 = 0x00000003;
    /// `PGP`
    pub const PGP: u32 = 0x00000004;
}

const CERTIFICATE_REQUEST_TYPE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "CRMF"),
    (0x00000002, "PKCS10"),
    (0x00000003, "PEM"),
    (0x00000004, "PGP"),
];

/// The `KeyCompressionType` enumeration.
pub mod key_compression_type {
    /// `ECPublicKeyTypeUncompressed`
    pub const EC_PUBLIC_KEY_TYPE_UNCOMPRESSED: u32 = 0x00000001;
    /// `ECPublicKeyTypeX962CompressedPrime`
    pub const EC_PUBLIC_KEY_TYPE_X9_62_COMPRESSED_PRIME: u32 = 0x00000002;
    /// `ECPublicKeyTypeX962CompressedChar2`
    pub const EC_PUBLIC_KEY_TYPE_X9_62_COMPRESSED_CHAR2: u32 = 0x00000003;
    /// `ECPublicKeyTypeX962Hybrid`
    pub const EC_PUBLIC_KEY_TYPE_X9_62_HYBRID: u32 = 0x00000004;
}

const KEY_COMPRESSION_TYPE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "ECPublicKeyTypeUncompressed"),
    (0x00000002, "ECPublicKeyTypeX962CompressedPrime"),
    (0x00000003, "ECPublicKeyTypeX962CompressedChar2"),
    (0x00000004, "ECPublicKeyTypeX962Hybrid"),
];

/// The `BatchErrorContinuationOption` enumeration.
pub mod batch_error_continuation_option {
    /// `Continue`
    pub const CONTINUE: u32 = 0x00000001;
    /// `Stop`
    pub const STOP: u32 = 0x00000002;
    /// `Undo`
    pub const UNDO: u32 = 0x00000003;
}

const BATCH_ERROR_CONTINUATION_OPTION_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Continue"),
    (0x00000002, "Stop"),
    (0x00000003, "Undo"),
];

/// The `WrappingMethod` enumeration.
pub mod wrapping_method {
    /// `Encrypt`
    pub const ENCRYPT: u32 = 0x00000001;
    /// `MACSign`
    pub const MAC_SIGN: u32 = 0x00000002;
    /// `EncryptThenMACSign`
    pub const ENCRYPT_THEN_MAC_SIGN: u32 = 0x00000003;
    /// `MACSignThenEncrypt`
    pub const MAC_SIGN_THEN_ENCRYPT: u32 = 0x00000004;
    /// `Tr31`
    pub const TR_31: u32 = 0x00000005;
}

const WRAPPING_METHOD_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Encrypt"),
    (0x00000002, "MACSign"),
    (0x00000003, "EncryptThenMACSign"),
    (0x00000004, "MACSignThenEncrypt"),
    (0x00000005, "Tr31"),
];

/// The `KeyRoleType` enumeration.
pub mod key_role_type {
    /// `Bdk`
    pub const BDK: u32 = 0x00000001;
    /// `Cvk`
    pub const CVK: u32 = 0x00000002;
    /// `Dek`
    pub const DEK: u32 = 0x00000003;
    /// `Mkac`
    pub const MKAC: u32 = 0x00000004;
    /// `Mksmc`
    pub const MKSMC: u32 = 0x00000005;
    /// `Mksmi`
    pub const MKSMI: u32 = 0x00000006;
    /// `Mkdac`
    pub const MKDAC: u32 = 0x00000007;
    /// `Mkdn`
    pub const MKDN: u32 = 0x00000008;
    /// `Mkcp`
    pub const MKCP: u32 = 0x00000009;
    /// `Mkoth`
    pub const MKOTH: u32 = 0x0000000A;
    /// `Kek`
    pub const KEK: u32 = 0x0000000B;
    /// `MAC16609`
    pub const MAC_16609: u32 = 0x0000000C;
    /// `MAC97971`
    pub const MAC_97971: u32 = 0x0000000D;
    /// `MAC97972`
    pub const MAC_97972: u32 = 0x0000000E;
    /// `MAC97973`
    pub const MAC_97973: u32 = 0x0000000F;
    /// `MAC97974`
    pub const MAC_97974: u32 = 0x00000010;
    /// `MAC97975`
    pub const MAC_97975: u32 = 0x00000011;
    /// `Zpk`
    pub const ZPK: u32 = 0x00000012;
    /// `Pvkibm`
    pub const PVKIBM: u32 = 0x00000013;
    /// `Pvkpvv`
    pub const PVKPVV: u32 = 0x00000014;
    /// `Pvkoth`
    pub const PVKOTH: u32 = 0x00000015;
    /// `Dukpt`
    pub const DUKPT: u32 = 0x00000016;
    /// `IV`
    pub const IV: u32 = 0x00000017;
    /// `Trkbk`
    pub const TRKBK: u32 = 0x00000018;
}

const KEY_ROLE_TYPE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Bdk"),
    (0x00000002, "Cvk"),
    (0x00000003, "Dek"),
    (0x00000004, "Mkac"),
    (0x00000005, "Mksmc"),
    (0x00000006, "Mksmi"),
    (0x00000007, "Mkdac"),
    (0x00000008, "Mkdn"),
    (0x00000009, "Mkcp"),
    (0x0000000A, "Mkoth"),
    (0x0000000B, "Kek"),
    (0x0000000C, "MAC16609"),
    (0x0000000D, "MAC97971"),
    (0x0000000E, "MAC97972"),
    (0x0000000F, "MAC97973"),
    (0x00000010, "MAC97974"),
    (0x00000011, "MAC97975"),
    (0x00000012, "Zpk"),
    (0x00000013, "Pvkibm"),
    (0x00000014, "Pvkpvv"),
    (0x00000015, "Pvkoth"),
    (0x00000016, "Dukpt"),
    (0x00000017, "IV"),
    (0x00000018, "Trkbk"),
];

/// The `CredentialType` enumeration.
pub mod credential_type {
    /// `UsernameAndPassword`
    pub const USERNAME_AND_PASSWORD: u32 = 0x00000001;
    /// `Device`
    pub const DEVICE: u32 = 0x00000002;
    /// `Attestation`
    pub const ATTESTATION: u32 = 0x00000003;
    /// `OneTimePassword`
    pub const ONE_TIME_PASSWORD: u32 = 0x00000004;
    /// `HashedPassword`
    pub const HASHED_PASSWORD: u32 = 0x00000005;
    /// `Ticket`
    pub const TICKET: u32 = 0x00000006;
}

const CREDENTIAL_TYPE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "UsernameAndPassword"),
    (0x00000002, "Device"),
    (0x00000003, "Attestation"),
    (0x00000004, "OneTimePassword"),
    (0x00000005, "HashedPassword"),
    (0x00000006, "Ticket"),
];

/// The `UniqueIdentifier` enumeration.
pub mod unique_identifier {
    /// `IDPlaceholder`
    pub const ID_PLACEHOLDER: u32 = 0x00000001;
    /// `Certify`
    pub const CERTIFY: u32 = 0x00000002;
    /// `Create`
    pub const CREATE: u32 = 0x00000003;
    /// `CreateKeyPair`
    pub const CREATE_KEY_PAIR: u32 = 0x00000004;
    /// `CreateKeyPairPrivateKey`
    pub const CREATE_KEY_PAIR_PRIVATE_KEY: u32 = 0x00000005;
    /// `CreateKeyPairPublicKey`
    pub const CREATE_KEY_PAIR_PUBLIC_KEY: u32 = 0x00000006;
    /// `CreateSplitKey`
    pub const CREATE_SPLIT_KEY: u32 = 0x00000007;
    /// `DeriveKey`
    pub const DERIVE_KEY: u32 = 0x00000008;
    /// `Import`
    pub const IMPORT: u32 = 0x00000009;
    /// `JoinSplitKey`
    pub const JOIN_SPLIT_KEY: u32 = 0x0000000A;
    /// `Locate`
    pub const LOCATE: u32 = 0x0000000B;
    /// `Register`
    pub const REGISTER: u32 = 0x0000000C;
    /// `Rekey`
    pub const REKEY: u32 = 0x0000000D;
    /// `Recertify`
    pub const RECERTIFY: u32 = 0x0000000E;
    /// `RekeyKeyPair`
    pub const REKEY_KEY_PAIR: u32 = 0x0000000F;
    /// `RekeyKeyPairPrivateKey`
    pub const REKEY_KEY_PAIR_PRIVATE_KEY: u32 = 0x00000010;
    /// `RekeyKeyPairPublicKey`
    pub const REKEY_KEY_PAIR_PUBLIC_KEY: u32 = 0x00000011;
}

const UNIQUE_IDENTIFIER_NAMES: &[(u32, &str)] = &[
    (0x00000001, "IDPlaceholder"),
    (0x00000002, "Certify"),
    (0x00000003, "Create"),
    (0x00000004, "CreateKeyPair"),
    (0x00000005, "CreateKeyPairPrivateKey"),
    (0x00000006, "CreateKeyPairPublicKey"),
    (0x00000007, "CreateSplitKey"),
    (0x00000008, "DeriveKey"),
    (0x00000009, "Import"),
    (0x0000000A, "JoinSplitKey"),
    (0x0000000B, "Locate"),
    (0x0000000C, "Register"),
    (0x0000000D, "Rekey"),
    (0x0000000E, "Recertify"),
    (0x0000000F, "RekeyKeyPair"),
    (0x00000010, "RekeyKeyPairPrivateKey"),
    (0x00000011, "RekeyKeyPairPublicKey"),
];

/// The `ValidityIndicator` enumeration.
pub mod validity_indicator {
    /// `Valid`
    pub const VALID: u32 = 0x00000001;
    /// `Invalid`
    pub const INVALID: u32 = 0x00000002;
    /// `Unknown`
    pub const UNKNOWN: u32 = 0x00000003;
}

const VALIDITY_INDICATOR_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Valid"),
    (0x00000002, "Invalid"),
    (0x00000003, "Unknown"),
];

/// The `EncodingOption` enumeration.
pub mod encoding_option {
    /// `NoEncoding`
    pub const NO_ENCODING: u32 = 0x00000001;
    /// `TtlvEncoding`
    pub const TTLV_ENCODING: u32 = 0x00000002;
}

const ENCODING_OPTION_NAMES: &[(u32, &str)] =
    &[(0x00000001, "NoEncoding"), (0x00000002, "TtlvEncoding")];

/// The `DerivationMethod` enumeration.
pub mod derivation_method {
    /// `PBKDF2`
    pub const PBKDF2: u32 = 0x00000001;
    /// `Hash`
    pub const HASH: u32 = 0x00000002;
    /// `HMAC`
    pub const HMAC: u32 = 0x00000003;
    /// `Encrypt`
    pub const ENCRYPT: u32 = 0x00000004;
    /// `Nist800108C`
    pub const NIST800_108_C: u32 = 0x00000005;
    /// `Nist800108F`
    pub const NIST800_108_F: u32 = 0x00000006;
    /// `Nist800108Dpi`
    pub const NIST800_108_DPI: u32 = 0x00000007;
    /// `AsymmetricKey`
    pub const ASYMMETRIC_KEY: u32 = 0x00000008;
    /// `AwsSignatureVersion4`
    pub const AWS_SIGNATURE_VERSION_4: u32 = 0x00000009;
    /// `Hkdf`
    pub const HKDF: u32 = 0x0000000A;
}

const DERIVATION_METHOD_NAMES: &[(u32, &str)] = &[
    (0x00000001, "PBKDF2"),
    (0x00000002, "Hash"),
    (0x00000003, "HMAC"),
    (0x00000004, "Encrypt"),
    (0x00000005, "Nist800108C"),
    (0x00000006, "Nist800108F"),
    (0x00000007, "Nist800108Dpi"),
    (0x00000008, "AsymmetricKey"),
    (0x00000009, "AwsSignatureVersion4"),
    (0x0000000A, "Hkdf"),
];

/// The `CancellationResult` enumeration.
pub mod cancellation_result {
    /// `Canceled`
    pub const CANCELED: u32 = 0x00000001;
    /// `UnableToCancel`
    pub const UNABLE_TO_CANCEL: u32 = 0x00000002;
    /// `Completed`
    pub const COMPLETED: u32 = 0x00000003;
    /// `Failed`
    pub const FAILED: u32 = 0x00000004;
    /// `Unavailable`
    pub const UNAVAILABLE: u32 = 0x00000005;
}

const CANCELLATION_RESULT_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Canceled"),
    (0x00000002, "UnableToCancel"),
    (0x00000003, "Completed"),
    (0x00000004, "Failed"),
    (0x00000005, "Unavailable"),
];

/// The `PutFunction` enumeration.
pub mod put_function {
    /// `New`
    pub const NEW: u32 = 0x00000001;
    /// `Replace`
    pub const REPLACE: u32 = 0x00000002;
}

const PUT_FUNCTION_NAMES: &[(u32, &str)] = &[(0x00000001, "New"), (0x00000002, "Replace")];

/// The `StorageStatusMask` enumeration.
pub mod storage_status_mask {
    /// `OnlineStorage`
    pub const ONLINE_STORAGE: u32 = 0x00000001;
    /// `ArchivalStorage`
    pub const ARCHIVAL_STORAGE: u32 = 0x00000002;
    /// `DestroyedStorage`
    pub const DESTROYED_STORAGE: u32 = 0x00000004;
}

const STORAGE_STATUS_MASK_NAMES: &[(u32, &str)] = &[
    (0x00000001, "OnlineStorage"),
    (0x00000002, "ArchivalStorage"),
    (0x00000004, "DestroyedStorage"),
];

/// The `ObjectGroupMember` enumeration.
pub mod object_group_member {
    /// `GroupMemberFresh`
    pub const GROUP_MEMBER_FRESH: u32 = 0x00000001;
    /// `GroupMemberDefault`
    pub const GROUP_MEMBER_DEFAULT: u32 = 0x00000002;
}

const OBJECT_GROUP_MEMBER_NAMES: &[(u32, &str)] = &[
    (0x00000001, "GroupMemberFresh"),
    (0x00000002, "GroupMemberDefault"),
];

/// The `AttestationType` enumeration.
pub mod attestation_type {
    /// `TpmQuote`
    pub const TPM_QUOTE: u32 = 0x00000001;
    /// `TcgIntegrityReport`
    pub const TCG_INTEGRITY_REPORT: u32 = 0x00000002;
    /// `SamlAssertion`
    pub const SAML_ASSERTION: u32 = 0x00000003;
}

const ATTESTATION_TYPE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "TpmQuote"),
    (0x00000002, "TcgIntegrityReport"),
    (0x00000003, "SamlAssertion"),
];

/// The `KeyWrapType` enumeration.
pub mod key_wrap_type {
    /// `NotWrapped`
    pub const NOT_WRAPPED: u32 = 0x00000001;
    /// `AsRegistered`
    pub const AS_REGISTERED: u32 = 0x00000002;
}

const KEY_WRAP_TYPE_NAMES: &[(u32, &str)] =
    &[(0x00000001, "NotWrapped"), (0x00000002, "AsRegistered")];

/// The `MaskGenerator` enumeration.
pub mod mask_generator {
    /// `Mgf1`
    pub const MGF1: u32 = 0x00000001;
}

const MASK_GENERATOR_NAMES: &[(u32, &str)] = &[(0x00000001, "Mgf1")];

/// The `ProtectionLevel` enumeration.
pub mod protection_level {
    /// `High`
    pub const HIGH: u32 = 0x00000001;
    /// `Low`
    pub const LOW: u32 = 0x00000002;
}

const PROTECTION_LEVEL_NAMES: &[(u32, &str)] = &[(0x00000001, "High"), (0x00000002, "Low")];

/// The `ProtectionStorageMask` enumeration.
pub mod protection_storage_mask {
    /// `Software`
    pub const SOFTWARE: u32 = 0x00000001;
    /// `Hardware`
    pub const HARDWARE: u32 = 0x00000002;
    /// `OnProcessor`
    pub const ON_PROCESSOR: u32 = 0x00000004;
    /// `OnSystem`
    pub const ON_SYSTEM: u32 = 0x00000008;
    /// `OffSystem`
    pub const OFF_SYSTEM: u32 = 0x00000010;
    /// `Hypervisor`
    pub const HYPERVISOR: u32 = 0x00000020;
    /// `OperatingSystem`
    pub const OPERATING_SYSTEM: u32 = 0x00000040;
    /// `Container`
    pub const CONTAINER: u32 = 0x00000080;
    /// `OnPremises`
    pub const ON_PREMISES: u32 = 0x00000100;
    /// `OffPremises`
    pub const OFF_PREMISES: u32 = 0x00000200;
    /// `SelfManaged`
    pub const SELF_MANAGED: u32 = 0x00000400;
    /// `Outsourced`
    pub const OUTSOURCED: u32 = 0x00000800;
    /// `Validated`
    pub const VALIDATED: u32 = 0x00001000;
    /// `SameJurisdiction`
    pub const SAME_JURISDICTION: u32 = 0x00002000;
}

const PROTECTION_STORAGE_MASK_NAMES: &[(u32, &str)] = &[
    (0x00000001, "Software"),
    (0x00000002, "Hardware"),
    (0x00000004, "OnProcessor"),
    (0x00000008, "OnSystem"),
    (0x00000010, "OffSystem"),
    (0x00000020, "Hypervisor"),
    (0x00000040, "OperatingSystem"),
    (0x00000080, "Container"),
    (0x00000100, "OnPremises"),
    (0x00000200, "OffPremises"),
    (0x00000400, "SelfManaged"),
    (0x00000800, "Outsourced"),
    (0x00001000, "Validated"),
    (0x00002000, "SameJurisdiction"),
];

/// The `KeyValueLocationType` enumeration.
pub mod key_value_location_type {
    /// `UninterpretedTextString`
    pub const UNINTERPRETED_TEXT_STRING: u32 = 0x00000001;
    /// `URI`
    pub const URI: u32 = 0x00000002;
}

const KEY_VALUE_LOCATION_TYPE_NAMES: &[(u32, &str)] =
    &[(0x00000001, "UninterpretedTextString"), (0x00000002, "URI")];

/// The `AlternativeNameType` enumeration.
pub mod alternative_name_type {
    /// `UninterpretedTextString`
    pub const UNINTERPRETED_TEXT_STRING: u32 = 0x00000001;
    /// `URI`
    pub const URI: u32 = 0x00000002;
    /// `ObjectSerialNumber`
    pub const OBJECT_SERIAL_NUMBER: u32 = 0x00000003;
    /// `EmailAddress`
    pub const EMAIL_ADDRESS: u32 = 0x00000004;
    /// `DnsName`
    pub const DNS_NAME: u32 = 0x00000005;
    /// `X500DistinguishedName`
    pub const X500_DISTINGUISHED_NAME: u32 = 0x00000006;
    /// `IPAddress`
    pub const IP_ADDRESS: u32 = 0x00000007;
}

const ALTERNATIVE_NAME_TYPE_NAMES: &[(u32, &str)] = &[
    (0x00000001, "UninterpretedTextString"),
    (0x00000002, "URI"),
    (0x00000003, "ObjectSerialNumber"),
    (0x00000004, "EmailAddress"),
    (0x00000005, "DnsName"),
    (0x00000006, "X500DistinguishedName"),
    (0x00000007, "IPAddress"),
];

/// The enumerations with names, by the tag that carries them.
pub(crate) const ENUM_NAMES: &[(u32, &[(u32, &str)])] = &[
    (tag::OPERATION, OPERATION_NAMES),
    (tag::OBJECT_TYPE, OBJECT_TYPE_NAMES),
    (tag::RESULT_STATUS, RESULT_STATUS_NAMES),
    (tag::RESULT_REASON, RESULT_REASON_NAMES),
    (tag::CRYPTOGRAPHIC_ALGORITHM, CRYPTOGRAPHIC_ALGORITHM_NAMES),
    (tag::KEY_FORMAT_TYPE, KEY_FORMAT_TYPE_NAMES),
    (tag::STATE, STATE_NAMES),
    (tag::REVOCATION_REASON_CODE, REVOCATION_REASON_CODE_NAMES),
    (tag::NAME_TYPE, NAME_TYPE_NAMES),
    (tag::QUERY_FUNCTION, QUERY_FUNCTION_NAMES),
    (tag::BLOCK_CIPHER_MODE, BLOCK_CIPHER_MODE_NAMES),
    (tag::PADDING_METHOD, PADDING_METHOD_NAMES),
    (tag::HASHING_ALGORITHM, HASHING_ALGORITHM_NAMES),
    (tag::LINK_TYPE, LINK_TYPE_NAMES),
    (tag::SECRET_DATA_TYPE, SECRET_DATA_TYPE_NAMES),
    (tag::OPAQUE_DATA_TYPE, OPAQUE_DATA_TYPE_NAMES),
    (tag::RECOMMENDED_CURVE, RECOMMENDED_CURVE_NAMES),
    (
        tag::DIGITAL_SIGNATURE_ALGORITHM,
        DIGITAL_SIGNATURE_ALGORITHM_NAMES,
    ),
    (tag::CERTIFICATE_TYPE, CERTIFICATE_TYPE_NAMES),
    (
        tag::CERTIFICATE_REQUEST_TYPE,
        CERTIFICATE_REQUEST_TYPE_NAMES,
    ),
    (tag::KEY_COMPRESSION_TYPE, KEY_COMPRESSION_TYPE_NAMES),
    (
        tag::BATCH_ERROR_CONTINUATION_OPTION,
        BATCH_ERROR_CONTINUATION_OPTION_NAMES,
    ),
    (tag::WRAPPING_METHOD, WRAPPING_METHOD_NAMES),
    (tag::KEY_ROLE_TYPE, KEY_ROLE_TYPE_NAMES),
    (tag::CREDENTIAL_TYPE, CREDENTIAL_TYPE_NAMES),
    (tag::UNIQUE_IDENTIFIER, UNIQUE_IDENTIFIER_NAMES),
    (tag::VALIDITY_INDICATOR, VALIDITY_INDICATOR_NAMES),
    (tag::ENCODING_OPTION, ENCODING_OPTION_NAMES),
    (tag::DERIVATION_METHOD, DERIVATION_METHOD_NAMES),
    (tag::CANCELLATION_RESULT, CANCELLATION_RESULT_NAMES),
    (tag::PUT_FUNCTION, PUT_FUNCTION_NAMES),
    (tag::STORAGE_STATUS_MASK, STORAGE_STATUS_MASK_NAMES),
    (tag::OBJECT_GROUP_MEMBER, OBJECT_GROUP_MEMBER_NAMES),
    (tag::ATTESTATION_TYPE, ATTESTATION_TYPE_NAMES),
    (tag::KEY_WRAP_TYPE, KEY_WRAP_TYPE_NAMES),
    (tag::MASK_GENERATOR, MASK_GENERATOR_NAMES),
    (tag::PROTECTION_LEVEL, PROTECTION_LEVEL_NAMES),
    (tag::PROTECTION_STORAGE_MASK, PROTECTION_STORAGE_MASK_NAMES),
    (tag::KEY_VALUE_LOCATION_TYPE, KEY_VALUE_LOCATION_TYPE_NAMES),
    (tag::ALTERNATIVE_NAME_TYPE, ALTERNATIVE_NAME_TYPE_NAMES),
    (tag::RNG_ALGORITHM, RNG_ALGORITHM_NAMES),
    (tag::DRBG_ALGORITHM, DRBG_ALGORITHM_NAMES),
];
