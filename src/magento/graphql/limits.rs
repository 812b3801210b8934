//! What one GraphQL request may ask: its size, its nesting, its depth and complexity, and
//! how many tokens it may try to obtain.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, SchemaBuilder, ServerError, ServerResult, Variables};

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

/// The mutations that issue a token: at most one of them runs per request.
pub(super) const ISSUING_FIELDS: [&str; 2] =
    ["generateCustomerToken", "generateCustomerTokenAsAdmin"];

/// `builder` with limits fit for a public endpoint: [`MAX_DEPTH`], [`MAX_COMPLEXITY`],
/// [`MAX_RECURSIVE_DEPTH`] and [`MAX_DIRECTIVES`], and a check that refuses a document
/// nested deeper than [`MAX_NESTING`] before async-graphql parses it (so the schema is
/// safe behind any transport, not only [`router`](super::router)).
///
/// async-graphql sets no depth or complexity limit of its own. Override any of these by
/// calling the builder's method after this one: the last call wins. The nesting check has
/// no switch: nothing valid nests that deep.
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
        .extension(NestingGuard)
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

/// An async-graphql extension that refuses a document nested deeper than [`MAX_NESTING`]
/// before it is parsed.
struct NestingGuard;

impl ExtensionFactory for NestingGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(NestingGuard)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for NestingGuard {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if exceeds_max_nesting(query) {
            let mut refusal = ServerError::new(TOO_DEEPLY_NESTED_MESSAGE, None);
            refusal.extensions = error(TOO_DEEPLY_NESTED_MESSAGE, category::INPUT).extensions;
            return Err(refusal);
        }
        next.run(ctx, query, variables).await
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
/// through fragments; counting stops at 2, which is already too many.
///
/// A field is counted where it is written, whatever `@skip` or `@include` say: a request
/// that would sign in twice but for a directive is refused all the same.
pub(super) fn issuing_fields(
    operation: &SelectionSet,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
) -> usize {
    IssuingCounter {
        fragments,
        counted: HashMap::new(),
    }
    .count(operation)
}

/// Counts issuing fields, each fragment once however often it is spread: a document that
/// spreads fragments into fragments cannot make the count take exponential time.
struct IssuingCounter<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    counted: HashMap<&'a str, usize>,
}

impl<'a> IssuingCounter<'a> {
    fn count(&mut self, selection_set: &'a SelectionSet) -> usize {
        let mut total = 0usize;
        for selection in &selection_set.items {
            let found = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    usize::from(ISSUING_FIELDS.contains(&field.name.node.as_str()))
                        + self.count(&field.selection_set.node)
                }
                Selection::InlineFragment(fragment) => {
                    self.count(&fragment.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
            };
            total = total.saturating_add(found);
            if total >= 2 {
                return 2;
            }
        }
        total
    }

    fn fragment(&mut self, name: &'a str) -> usize {
        if let Some(&found) = self.counted.get(name) {
            return found;
        }
        // A fragment that spreads itself (refused by validation anyway) adds nothing more.
        self.counted.insert(name, 0);
        let found = self
            .fragments
            .get(name)
            .map_or(0, |fragment| self.count(&fragment.node.selection_set.node));
        self.counted.insert(name, found);
        found
    }
}

#[cfg(test)]
mod tests {
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

    fn issuing_in(query: &str) -> usize {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let operation = selected_operation(&document, None).unwrap();
        issuing_fields(&operation.selection_set.node, &document.fragments)
    }

    #[test]
    fn issuing_fields_are_counted_by_name_whatever_their_alias() {
        assert_eq!(issuing_in("mutation { revokeCustomerToken { result } }"), 0);
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
            1
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
