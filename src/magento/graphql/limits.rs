//! What one GraphQL request may ask: its size, its nesting, what it comes to with its
//! fragments written out, its depth and complexity, and how many tokens it may try to
//! obtain.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, Request, SchemaBuilder, ServerError, ServerResult};

use super::expansion::{Expansion, expanded_nodes};
use super::{category, error};

/// The largest body of a GraphQL `POST` that [`router`](super::router)
/// reads; a larger one is answered 413. Four times the token routes'
/// [`MAX_BODY_BYTES`](crate::magento::rest::MAX_BODY_BYTES): room for the queries of a storefront, not for
/// a document built to exhaust the server. (A `GET` is bounded alike: the http crate takes
/// no URI over 64 KiB.)
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The deepest nesting of `{`, `[` and `(` (outside strings and comments) that a GraphQL
/// document may have. Deeper documents are refused before they are parsed: async-graphql's
/// parser turns nested values into its own types by recursion without a bound, and a few
/// hundred levels overflow a 2 MiB thread stack in a debug build (some 1,600 in a release
/// build), which aborts the whole process. Real queries stay far below: GraphiQL's
/// introspection query nests a dozen.
pub const MAX_NESTING: usize = 64;

/// The most nodes a GraphQL document may come to once its fragments are written out in
/// place. Larger documents are refused before async-graphql checks them: its recursion
/// depth check, validation and complexity count all walk the written-out form, and
/// fragments that each spread the next one four times write a 600-byte document out to
/// millions of fields, which kept those checks busy for close to a minute of CPU before
/// any limit refused it.
///
/// What counts, once per place it is written out: each field, fragment spread and inline
/// fragment, each directive, and each value in their arguments (a list or an object counts
/// one, and so does each of its items). Every operation counts, not only the one asked
/// for, and every fragment definition, used or not: async-graphql checks them all. A
/// fragment that spreads itself, directly or not, writes out without end and is refused
/// too. Taking the count costs time linear in the document, however its fragments spread.
///
/// GraphiQL's introspection query comes to 531 (258 for its operation, 273 for its three
/// fragments); a query within [`MAX_COMPLEXITY`] has at most 300 fields besides its
/// `__typename`s, so it stays far below even with arguments on every field. The bound also
/// keeps the written-out form within what a plain document of [`MAX_REQUEST_BYTES`]
/// already holds (two bytes or more per node), so fragments cannot make a request cost
/// more to check than its bytes would.
pub const MAX_EXPANDED_NODES: usize = 10_000;

/// The default of [`with_default_limits`] for the depth of fields in an operation: Magento's
/// default `queryDepth`.
pub const MAX_DEPTH: usize = 20;

/// The default of [`with_default_limits`] for the complexity of an operation, where each
/// field (each alias too, `__typename` excepted) counts 1: Magento's default
/// `queryComplexity`. A request cannot fan out into thousands of aliased fields.
pub const MAX_COMPLEXITY: usize = 300;

/// The default of [`with_default_limits`] for how deeply selection sets may nest, fragments
/// included (async-graphql's own default, made explicit).
pub const MAX_RECURSIVE_DEPTH: usize = 32;

/// The default of [`with_default_limits`] for the directives on one field.
pub const MAX_DIRECTIVES: usize = 10;

/// Answer to a document nested deeper than [`MAX_NESTING`].
pub(super) const TOO_DEEPLY_NESTED_MESSAGE: &str =
    "The query is nested too deeply: it was not parsed.";

/// Answer to a document that comes to more than [`MAX_EXPANDED_NODES`].
pub(super) const TOO_LARGE_WHEN_EXPANDED_MESSAGE: &str =
    "The query is too large with its fragments written out: it was not run.";

/// The mutations that issue a token: at most one of them runs per request.
pub(super) const ISSUING_FIELDS: [&str; 2] =
    ["generateCustomerToken", "generateCustomerTokenAsAdmin"];

/// `builder` with limits fit for a public endpoint: [`MAX_DEPTH`], [`MAX_COMPLEXITY`],
/// [`MAX_RECURSIVE_DEPTH`] and [`MAX_DIRECTIVES`], and an extension that refuses a
/// document nested deeper than [`MAX_NESTING`] before async-graphql parses it, and one
/// that comes to more than [`MAX_EXPANDED_NODES`] with its fragments written out before
/// async-graphql checks and validates it (so the schema is safe behind any transport, not
/// only [`router`](super::router)). The extension looks at the request once the other
/// extensions' `prepare_request` have run, so it sees the query that will be parsed.
///
/// async-graphql sets no depth or complexity limit of its own. Override any of these by
/// calling the builder's method after this one: the last call wins. The nesting and
/// expansion checks have no switch: nothing valid nests that deep, and the expansion bound
/// is far above what the complexity limit lets a query run.
///
/// ```
/// use async_graphql::{EmptySubscription, MergedObject, Object, Schema};
/// use tower_bearer::magento::graphql::{TokenMutation, with_default_limits};
/// use tower_bearer::{SignIn, TokenRegistry};
/// use tower_bearer::sign_in::MemoryDirectory;
///
/// # #[derive(Default)] struct Query;
/// # #[Object] impl Query { async fn ping(&self) -> bool { true } }
/// #[derive(MergedObject, Default)]
/// struct Mutation(TokenMutation);
///
/// let service = SignIn::new(TokenRegistry::memory(), MemoryDirectory::new());
/// let schema = with_default_limits(Schema::build(Query, Mutation::default(), EmptySubscription))
///     .limit_complexity(500) // a larger budget than the default
///     .data(service)
///     .finish();
/// ```
pub fn with_default_limits<Query, Mutation, Subscription>(
    builder: SchemaBuilder<Query, Mutation, Subscription>,
) -> SchemaBuilder<Query, Mutation, Subscription> {
    builder
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(MAX_RECURSIVE_DEPTH)
        .limit_directives(MAX_DIRECTIVES)
        .extension(DocumentGuard)
}

/// Refuses the document of `request` if it nests deeper than [`MAX_NESTING`] (before
/// parsing it) or comes to more than [`MAX_EXPANDED_NODES`] (after): `Err` holds the
/// message of the refusal. Otherwise the parsed document, kept in `request` so that the
/// executor does not parse it again, or `None` if it does not parse: the executor reports
/// that in its own words.
pub(super) fn admit(request: &mut Request) -> Result<Option<&ExecutableDocument>, &'static str> {
    if exceeds_max_nesting(&request.query) {
        return Err(TOO_DEEPLY_NESTED_MESSAGE);
    }
    let Ok(document) = request.parsed_query() else {
        return Ok(None);
    };
    if expanded_nodes(document, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES {
        return Err(TOO_LARGE_WHEN_EXPANDED_MESSAGE);
    }
    Ok(Some(document))
}

/// Whether `query` nests `{`, `[` and `(` deeper than [`MAX_NESTING`], not counting those
/// in strings, block strings and comments. One pass, no allocation, no recursion: it must
/// be safe on any input, since it runs before the parser.
///
/// Where the document is not valid GraphQL (an unterminated string, say), it errs towards
/// counting: a line break ends a string here, as for the lexer, so brackets cannot hide
/// from this scan in text the parser would read as document.
pub(super) fn exceeds_max_nesting(query: &str) -> bool {
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        at += 1;
        match byte {
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return true;
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            b'#' => at = end_of_comment(bytes, at),
            b'"' if bytes.get(at..at + 2) == Some(b"\"\"") => {
                at = end_of_block_string(bytes, at + 2);
            }
            b'"' => at = end_of_string(bytes, at),
            _ => {}
        }
    }
    false
}

/// Where a comment that starts before `at` ends: at its line break.
fn end_of_comment(bytes: &[u8], at: usize) -> usize {
    bytes[at..]
        .iter()
        .position(|&byte| byte == b'\n' || byte == b'\r')
        .map_or(bytes.len(), |offset| at + offset)
}

/// Where a string whose opening quote is before `at` ends: after its closing quote, or at
/// a line break (where the lexer would end it too, with an error).
fn end_of_string(bytes: &[u8], mut at: usize) -> usize {
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => return at + 1,
            b'\n' | b'\r' => return at,
            // Only `\"` and `\\` change where the string ends.
            b'\\' if matches!(bytes.get(at + 1), Some(b'"' | b'\\')) => at += 2,
            _ => at += 1,
        }
    }
    at
}

/// Where a block string whose opening `"""` is before `at` ends: after its closing `"""`.
fn end_of_block_string(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        if bytes[at..].starts_with(b"\\\"\"\"") {
            at += 4;
        } else if bytes[at..].starts_with(b"\"\"\"") {
            return at + 3;
        } else {
            at += 1;
        }
    }
    at
}

/// An async-graphql extension that runs [`admit`] on every request, before async-graphql
/// parses, checks or validates it.
struct DocumentGuard;

impl ExtensionFactory for DocumentGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentGuard)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentGuard {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // The other extensions first: one of them may fill in the query (an automatic
        // persisted query, say). async-graphql parses the request this returns; its
        // recursion depth check and validation come after that.
        let mut request = next.run(ctx, request).await?;
        if let Err(message) = admit(&mut request) {
            let mut refusal = ServerError::new(message, None);
            refusal.extensions = error(message, category::INPUT).extensions;
            return Err(refusal);
        }
        Ok(request)
    }
}

/// The operation of `document` that a request for `operation_name` runs, as async-graphql
/// picks it: the named one, or the only one.
pub(super) fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    let mut operations = document.operations.iter();
    let (_, operation) = match operation_name {
        Some(wanted) => operations.find(|(name, _)| name.is_some_and(|name| name == wanted)),
        None => operations.next(),
    }?;
    Some(&operation.node)
}

/// How many token-issuing fields ([`ISSUING_FIELDS`]) `operation` selects, at any depth and
/// through fragments: 0, 1, or 2 for two or more (a fragment that spreads itself counts as
/// more). It takes time linear in the document, however its fragments spread, and stops at
/// the second issuing field: each issuing resolver asks again.
///
/// A field is counted where it is written, whatever `@skip` or `@include` say: a request
/// that would sign in twice but for a directive is refused all the same.
pub(super) fn issuing_fields(
    operation: &SelectionSet,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
) -> usize {
    Expansion::new(fragments, |selection: &Selection| match selection {
        Selection::Field(field) => {
            usize::from(ISSUING_FIELDS.contains(&field.node.name.node.as_str()))
        }
        Selection::FragmentSpread(_) | Selection::InlineFragment(_) => 0,
    })
    .up_to(1)
    .of(operation)
    .min(2)
}

#[cfg(test)]
mod tests {
    use super::super::expansion::tests::fanning_out;
    use super::*;

    fn nested(open: &str, close: &str, levels: usize) -> String {
        format!(
            "{{ f(x: {}1{}) }}",
            open.repeat(levels - 2),
            close.repeat(levels - 2)
        )
    }

    #[test]
    fn nesting_up_to_the_limit_passes_and_one_more_level_is_refused() {
        assert!(!exceeds_max_nesting(&nested("[", "]", MAX_NESTING)));
        assert!(exceeds_max_nesting(&nested("[", "]", MAX_NESTING + 1)));
        assert!(exceeds_max_nesting(&nested("{a:", "}", MAX_NESTING + 1)));
    }

    #[test]
    fn braces_brackets_and_parentheses_all_count_toward_one_depth() {
        let mixed = "{(".repeat(MAX_NESTING / 2) + "[";
        assert!(exceeds_max_nesting(&mixed));
        assert!(!exceeds_max_nesting(&"{(".repeat(MAX_NESTING / 2)));
    }

    #[test]
    fn closed_levels_do_not_add_up() {
        let siblings = "{ a { b } }".repeat(10_000);
        assert!(!exceeds_max_nesting(&siblings));
    }

    #[test]
    fn brackets_in_strings_are_not_counted() {
        let deep = "[".repeat(10_000);
        assert!(!exceeds_max_nesting(&format!(r#"{{ f(x: "{deep}") }}"#)));
    }

    #[test]
    fn an_escaped_quote_does_not_end_a_string() {
        let deep = "[".repeat(10_000);
        assert!(!exceeds_max_nesting(&format!(
            r#"{{ f(x: "\"{deep}\\") }}"#
        )));
        // `\\` is one backslash: the quote after it ends the string.
        assert!(exceeds_max_nesting(&format!(
            r#"{{ f(x: "\\" y: {deep}) }}"#
        )));
    }

    #[test]
    fn brackets_in_block_strings_are_not_counted() {
        let deep = "[".repeat(10_000);
        let query = format!("{{ f(x: \"\"\"\n{deep}\n\\\"\"\" {deep} \"\n\"\"\") }}");
        assert!(!exceeds_max_nesting(&query));
        assert!(exceeds_max_nesting(&format!(
            "{{ f(x: \"\"\"a\"\"\", y: {deep}) }}"
        )));
    }

    #[test]
    fn an_empty_string_is_not_a_block_string() {
        let deep = "[".repeat(10_000);
        assert!(exceeds_max_nesting(&format!(
            r#"{{ f(x: "", y: {deep}) }}"#
        )));
    }

    #[test]
    fn brackets_in_comments_are_not_counted_up_to_the_line_break() {
        let deep = "[".repeat(10_000);
        assert!(!exceeds_max_nesting(&format!("{{ # {deep}\n f }}")));
        assert!(exceeds_max_nesting(&format!(
            "{{ # comment\n f(x: {deep}) }}"
        )));
        assert!(exceeds_max_nesting(&format!(
            "{{ # comment\r f(x: {deep}) }}"
        )));
    }

    #[test]
    fn a_line_break_ends_a_string_so_brackets_cannot_hide_behind_it() {
        let deep = "[".repeat(10_000);
        assert!(exceeds_max_nesting(&format!(
            "{{ f(x: \"open\n y: {deep} \") }}"
        )));
    }

    #[test]
    fn unterminated_strings_and_stray_closers_are_safe_to_scan() {
        assert!(!exceeds_max_nesting("{ f(x: \"no end"));
        assert!(!exceeds_max_nesting("{ f(x: \"\"\"no end"));
        assert!(!exceeds_max_nesting("{ f(x: \"\\"));
        assert!(!exceeds_max_nesting("]]]]}}}))) {}"));
        assert!(!exceeds_max_nesting("#"));
        assert!(!exceeds_max_nesting(""));
    }

    #[test]
    fn a_document_is_admitted_up_to_the_expansion_bound_and_refused_one_node_over_it() {
        let fields = |count: usize| format!("{{ {} }}", "a ".repeat(count));
        let mut request = Request::new(fields(MAX_EXPANDED_NODES));
        assert!(matches!(admit(&mut request), Ok(Some(_))));
        let mut request = Request::new(fields(MAX_EXPANDED_NODES + 1));
        assert_eq!(
            admit(&mut request).err(),
            Some(TOO_LARGE_WHEN_EXPANDED_MESSAGE)
        );
    }

    #[test]
    fn fragments_spreading_fragments_are_refused_by_what_they_write_out_to() {
        for (levels, fan_out) in [(10, 4), (12, 4), (40, 8), (20_000, 1)] {
            let mut request = Request::new(fanning_out(levels, fan_out));
            assert_eq!(
                admit(&mut request).err(),
                Some(TOO_LARGE_WHEN_EXPANDED_MESSAGE),
                "{levels} levels of {fan_out}"
            );
        }
        let mut request = Request::new(fanning_out(3, 4));
        assert!(matches!(admit(&mut request), Ok(Some(_))), "a few hundred");
    }

    #[test]
    fn a_fragment_cycle_is_refused_and_an_unparsable_document_left_to_the_executor() {
        let mut request = Request::new("{ ...A } fragment A on Q { a ...A }");
        assert_eq!(
            admit(&mut request).err(),
            Some(TOO_LARGE_WHEN_EXPANDED_MESSAGE)
        );
        assert!(matches!(admit(&mut Request::new("{ a")), Ok(None)));
    }

    #[test]
    fn admit_refuses_a_deeply_nested_document_before_parsing_it() {
        let mut request = Request::new(nested("[", "]", MAX_NESTING + 1));
        assert_eq!(admit(&mut request).err(), Some(TOO_DEEPLY_NESTED_MESSAGE));
    }

    fn issuing_in(query: &str) -> usize {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let operation = selected_operation(&document, None).unwrap();
        issuing_fields(&operation.selection_set.node, &document.fragments)
    }

    #[test]
    fn issuing_fields_are_counted_by_name_whatever_their_alias() {
        assert_eq!(issuing_in("mutation { revokeCustomerToken { result } }"), 0);
        assert_eq!(
            issuing_in(
                "mutation { a: revokeCustomerTokenById(token_id: \"x\") { result } \
                 b: revokeCustomerTokenById(token_id: \"y\") { result } }"
            ),
            0
        );
        assert_eq!(
            issuing_in(
                "{ a: customerTokens { items { token_id } } b: customerTokens { items { current } } }"
            ),
            0
        );
        assert_eq!(
            issuing_in("mutation { generateCustomerToken { token } }"),
            1
        );
        assert_eq!(
            issuing_in(
                "mutation { a: generateCustomerToken { token } b: generateCustomerToken { token } }"
            ),
            2
        );
        assert_eq!(
            issuing_in(
                "mutation { generateCustomerToken { token } generateCustomerTokenAsAdmin { customer_token } }"
            ),
            2
        );
    }

    #[test]
    fn issuing_fields_are_counted_through_fragments_and_nested_fields() {
        assert_eq!(
            issuing_in(
                "mutation { ...A ... on Mutation { generateCustomerToken { token } } } \
                 fragment A on Mutation { generateCustomerToken { token } }"
            ),
            2
        );
        assert_eq!(
            issuing_in(
                "mutation { ...A ...A } fragment A on Mutation { generateCustomerToken { token } }"
            ),
            2,
            "a fragment spread twice runs twice"
        );
        assert_eq!(
            issuing_in(
                "mutation { account { a: generateCustomerToken b: generateCustomerToken } }"
            ),
            2
        );
    }

    #[test]
    fn fragments_spreading_each_other_are_counted_without_looping() {
        assert_eq!(
            issuing_in("mutation { ...A } fragment A on Mutation { ...A generateCustomerToken }"),
            2,
            "a fragment that spreads itself signs in without end"
        );
        let chain: String = (0..64)
            .map(|level| {
                format!(
                    "fragment F{level} on M {{ ...F{} ...F{} }} ",
                    level + 1,
                    level + 1
                )
            })
            .collect();
        let query = format!("mutation {{ ...F0 }} {chain} fragment F64 on M {{ x }}");
        assert_eq!(issuing_in(&query), 0);
    }
}
