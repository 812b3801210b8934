//! The OpenAPI 3.1 document of the [`rest`](super::rest) routes, built by `utoipa` from the
//! annotations on their handlers: [`openapi`].
//!
//! The schemas here describe bodies the handlers read or assemble as JSON values; the
//! statuses are listed on each handler, next to the code that answers them.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi as _, ToSchema};

/// The name of the HTTP bearer security scheme the routes that take a token require.
pub const BEARER_AUTH: &str = "bearerAuth";

// The answers every route that takes a token may give before its handler runs (the
// router's `BearerAuthLayer`), or from its extractor.
pub(super) const UNAUTHORIZED: &str = "No `Authorization: Bearer` token, or one that is \
    unknown, expired or revoked (`WWW-Authenticate: Bearer …`, `error=\"invalid_token\"` for \
    a bad token).";
pub(super) const UNAVAILABLE: &str = "The token store or the account directory did not \
    answer: try again after `Retry-After` seconds.";
pub(super) const MALFORMED_HEADER: &str =
    "The `Authorization` header is malformed (`error=\"invalid_request\"`).";
pub(super) const TOO_LARGE: &str = "The request body is larger than 16 KiB.";
pub(super) const NOT_JSON: &str =
    "The request body is not sent with `Content-Type: application/json`.";
pub(super) const CREDENTIALS_REFUSED: &str = "Wrong username or password, unknown or \
    locked account: deliberately one answer.";
pub(super) const LIMIT: &str = "The account already holds as many live tokens as its limit \
    allows, and the limit refuses more (`SessionRules::with_limit`).";
pub(super) const TOKEN_ISSUED: &str =
    "The new token, as a bare JSON string (`Cache-Control: no-store`).";

/// Every refusal: Magento's error body.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built: `ApiError` and the layer write it
pub(super) struct ErrorMessage {
    /// What went wrong, in words.
    message: String,
}

/// A sign-in.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built: the handler reads the fields from a JSON object
pub(super) struct Credentials {
    /// The customer's email, or the admin's username.
    username: String,
    /// The password.
    password: String,
}

/// An admin's sign-in with a second factor.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built
pub(super) struct TotpCredentials {
    /// The admin's username.
    username: String,
    /// The password.
    password: String,
    /// The current code of the admin's authenticator app (TOTP, RFC 6238).
    otp: String,
}

/// The token to revoke; without it (or without a body) the caller's own.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built
pub(super) struct RevokeRequest {
    /// The token to revoke: the caller's own, or any token for an admin granting
    /// `Magento_Customer::manage`.
    token: Option<String>,
}

/// The kind of a token.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // described, never built: `TokenKind` is serialized
pub(super) enum Kind {
    /// A customer's.
    Customer,
    /// An admin's.
    Admin,
    /// A machine client's.
    Integration,
}

/// One of an account's tokens, as a session: never its secret.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built: `sessions::describe` assembles it
pub(super) struct Session {
    /// The token's public id: what ends it.
    token_id: String,
    kind: Kind,
    /// When it was issued (RFC 3339, UTC).
    #[schema(format = DateTime)]
    created_at: String,
    /// Its absolute expiry; `null` for a token that lives until revoked.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    expires_at: Option<String>,
    /// With an idle timeout: when it expires unless used before.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    idle_expires_at: Option<String>,
    /// When a use of it was last recorded.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    last_used_at: Option<String>,
    /// The `User-Agent` it was issued to.
    #[schema(required = true)]
    user_agent: Option<String>,
    /// The address it was issued to.
    #[schema(required = true)]
    ip: Option<String>,
    /// The admin who obtained it on the customer's behalf.
    #[schema(required = true)]
    acting_admin: Option<String>,
    /// The second factor of its sign-in (`"totp"`).
    #[schema(required = true)]
    second_factor: Option<String>,
    /// What it grants.
    scopes: Vec<String>,
    /// Its name (integration tokens).
    #[schema(required = true)]
    name: Option<String>,
    /// Whether it is the token of this very request.
    current: bool,
}

/// An integration token: never its secret.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built: `integrations::describe` assembles it
pub(super) struct IntegrationToken {
    /// The token's public id: what deletes it.
    token_id: String,
    /// The integration's name.
    name: String,
    /// What it grants.
    scopes: Vec<String>,
    /// When it was created (RFC 3339, UTC).
    #[schema(format = DateTime)]
    created_at: String,
    /// Its expiry; `null` for a token that lives until deleted.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    expires_at: Option<String>,
    /// The admin who created it.
    #[schema(required = true)]
    created_by: Option<String>,
}

/// A new integration token: what it records, and its secret, shown this once.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built
pub(super) struct NewIntegrationToken {
    /// The secret: the Bearer token the integration sends.
    token: String,
    /// The token's public id: what deletes it.
    token_id: String,
    /// The integration's name.
    name: String,
    /// What it grants.
    scopes: Vec<String>,
    /// When it was created (RFC 3339, UTC).
    #[schema(format = DateTime)]
    created_at: String,
    /// Its expiry; `null` for a token that lives until deleted.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    expires_at: Option<String>,
    /// The admin who created it.
    #[schema(required = true)]
    created_by: Option<String>,
}

/// A new integration token's request.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built
pub(super) struct NewIntegration {
    /// The integration's name: at most 100 printable characters.
    name: String,
    /// What the token grants: only scopes the admin's own token holds.
    scopes: Option<Vec<String>>,
    /// Its lifetime in seconds (above 0, at most the longest lifetime); none: until deleted.
    #[schema(minimum = 1)]
    lifetime: Option<u64>,
}

/// RFC 7662 §2.1: the token asked about.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built
pub(super) struct IntrospectionRequest {
    /// The token.
    token: String,
    /// Accepted and ignored: there is one kind of token here.
    token_type_hint: Option<String>,
}

/// RFC 7662 §2.2: `{"active": false}` and nothing else for a token that is not live; for a
/// live one, what it records.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built: `introspection::describe` assembles it
pub(super) struct Introspection {
    /// Whether the token is live.
    active: bool,
    /// `"Bearer"`.
    #[schema(required = false)]
    token_type: Option<String>,
    /// Whose it is: the customer's email, the admin's username, or `integrations`.
    #[schema(required = false)]
    sub: Option<String>,
    /// Its scopes, space-separated; absent for a token without scopes.
    #[schema(required = false)]
    scope: Option<String>,
    /// When it expires unless used before (seconds since the epoch); absent for a token
    /// that lives until revoked.
    #[schema(required = false)]
    exp: Option<i64>,
    /// When it was issued (seconds since the epoch).
    #[schema(required = false)]
    iat: Option<i64>,
    /// Its public id.
    #[schema(required = false)]
    token_id: Option<String>,
    /// Its kind.
    #[schema(required = false)]
    kind: Option<Kind>,
    /// The admin who obtained it on the customer's behalf.
    #[schema(required = false)]
    acting_admin: Option<String>,
}

/// Adds the [`BEARER_AUTH`] scheme.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER_AUTH,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An opaque token from one of the token routes (or an integration \
                         token), sent as `Authorization: Bearer <token>`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// A body the client may leave out is not a body that may be `null`: utoipa describes an
/// `Option<T>` body as "`null` or `T`", not required; this keeps "not required" and `T`.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                unwrap_optional_body(operation);
            }
        }
    }
}

fn unwrap_optional_body(operation: &mut Operation) {
    let Some(body) = operation.request_body.as_mut() else {
        return;
    };
    for content in body.content.values_mut() {
        if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema {
            let reference = one_of
                .items
                .iter()
                .find(|item| matches!(item, RefOr::Ref(_)))
                .cloned();
            if one_of.items.len() == 2 && reference.is_some() {
                content.schema = reference;
            }
        }
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Magento token services (tower-bearer)",
        description = "The REST routes of `tower_bearer::magento::rest::router`: tokens issued \
            for credentials, revoked, listed as sessions, integration tokens, and token \
            introspection (RFC 7662). Paths are documented as the router serves them, bare \
            (`/V1/…`); mounted as Magento serves them, the same routes answer under `/rest/V1/…` \
            and `/rest/{store_code}/V1/…`. Every refusal is `{\"message\": …}`."
    ),
    paths(
        super::rest::customer_token,
        super::rest::admin_token,
        super::rest::admin_token_with_totp,
        super::rest::revoke_customer_tokens,
        super::rest::revoke_token,
        super::rest::force_sign_out,
        super::sessions::customer_list,
        super::sessions::customer_end,
        super::sessions::customer_end_others,
        super::sessions::admin_list,
        super::sessions::admin_end,
        super::sessions::admin_end_others,
        super::sessions::customer_tokens_for_admin,
        super::sessions::end_customer_token_for_admin,
        super::integrations::create,
        super::integrations::list,
        super::integrations::remove,
        super::introspection::introspect,
    ),
    components(schemas(
        ErrorMessage,
        Credentials,
        TotpCredentials,
        RevokeRequest,
        Kind,
        Session,
        IntegrationToken,
        NewIntegrationToken,
        NewIntegration,
        IntrospectionRequest,
        Introspection,
    )),
    modifiers(&BearerScheme, &OptionalBodies),
    tags(
        (name = "tokens", description = "Tokens for credentials, and their revocation."),
        (name = "sessions", description = "An account's own tokens as sessions; an admin's view of a customer's."),
        (name = "integrations", description = "Integration tokens, managed by an admin granting `Magento_Integration::integrations`."),
        (name = "introspection", description = "Token introspection (RFC 7662), for a token granting `introspect`."),
    )
)]
struct RestApi;

/// The OpenAPI 3.1 document of every route of [`rest::router`](super::rest::router), at
/// the bare paths it serves (`/V1/…`): request and response schemas, every status each
/// route answers (its own refusals and those of its Bearer layer) and the
/// [`BEARER_AUTH`] security scheme (HTTP bearer) on the routes that take a token.
///
/// Merge it into the application's own document; with the routes mounted under a prefix
/// too (`/rest`, `/rest/{store_code}`), [`OpenApi::nest`](utoipa::openapi::OpenApi::nest)
/// documents them there.
///
/// ```
/// use utoipa::openapi::{InfoBuilder, OpenApiBuilder};
///
/// let mut api = OpenApiBuilder::new()
///     .info(InfoBuilder::new().title("My shop").version("1.0.0").build())
///     .build();
/// api.merge(tower_bearer::magento::openapi());
/// assert!(api.paths.paths.contains_key("/V1/integration/customer/token"));
///
/// let json = api.to_pretty_json()?;
/// assert!(json.contains("\"bearerAuth\""));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn openapi() -> utoipa::openapi::OpenApi {
    RestApi::openapi()
}
