//! What a GraphQL document amounts to once its fragments are written out in place, counted
//! without writing them out: each fragment is counted once, however often it is spread.
//!
//! A fragment that spreads the next one four times, a dozen times over, writes out to 4¹²
//! copies of the last one. async-graphql's own checks (recursion depth, validation,
//! complexity) walk that written-out form, so they must not see such a document; counting
//! it here takes time linear in the document, and no recursion, so that nothing a client
//! sends can exhaust the stack either.

use std::collections::HashMap;

use async_graphql::Name;
use async_graphql::Positioned;
use async_graphql::parser::types::{
    Directive, ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql_value::Value;

/// A fragment whose count is known, or still being taken (met again, it spreads itself).
#[derive(Clone, Copy)]
enum Count {
    Counting,
    Counted(usize),
}

/// A fragment being counted: what it has come to so far, and the spreads still to add.
struct Pending<'a> {
    name: &'a str,
    total: usize,
    spreads: Vec<&'a str>,
}

/// Adds up `weight` over every selection of a selection set with its fragments written out
/// in place, saturating at `usize::MAX`. A fragment that spreads itself, directly or
/// through others, writes out without end: it counts `usize::MAX`. A spread of a fragment
/// the document lacks adds only its own weight (validation reports it).
///
/// With [`up_to`](Self::up_to), it stops as soon as a count passes the limit and answers
/// `usize::MAX`: a caller that asks whether a document is over a bound needs no more.
pub(super) struct Expansion<'a, W> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    weight: W,
    limit: usize,
    counted: HashMap<&'a str, Count>,
}

impl<'a, W: Fn(&'a Selection) -> usize> Expansion<'a, W> {
    pub(super) fn new(
        fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
        weight: W,
    ) -> Self {
        Self {
            fragments,
            weight,
            limit: usize::MAX,
            counted: HashMap::new(),
        }
    }

    /// Counts exactly up to `limit`, and answers `usize::MAX` for anything over it, having
    /// stopped as soon as it knew. Fragments left half-counted then read as `usize::MAX`,
    /// which is right: each of them holds the part that passed the limit.
    pub(super) fn up_to(self, limit: usize) -> Self {
        Self { limit, ..self }
    }

    /// The weight of `selection_set` written out.
    pub(super) fn of(&mut self, selection_set: &'a SelectionSet) -> usize {
        let (mut total, spreads) = self.scan(selection_set);
        for name in spreads {
            if total > self.limit {
                break;
            }
            total = total.saturating_add(self.of_fragment(name));
        }
        self.capped(total)
    }

    /// The weight of the fragment `name` written out. Depth-first over the fragments it
    /// spreads, on a stack of its own rather than the thread's: a chain of spreads may be
    /// as long as the document allows.
    pub(super) fn of_fragment(&mut self, name: &'a str) -> usize {
        if let Some(known) = self.known(name) {
            return known;
        }
        let mut stack = vec![self.start(name)];
        let mut total = 0;
        while let Some(top) = stack.last_mut() {
            if top.total > self.limit {
                // It and every fragment below it on the stack are over the limit.
                return usize::MAX;
            }
            if let Some(spread) = top.spreads.pop() {
                match self.known(spread) {
                    Some(known) => top.total = top.total.saturating_add(known),
                    None => {
                        let next = self.start(spread);
                        stack.push(next);
                    }
                }
            } else if let Some(done) = stack.pop() {
                self.counted.insert(done.name, Count::Counted(done.total));
                match stack.last_mut() {
                    Some(parent) => parent.total = parent.total.saturating_add(done.total),
                    // The last to finish is `name` itself.
                    None => total = done.total,
                }
            }
        }
        total
    }

    fn capped(&self, total: usize) -> usize {
        if total > self.limit {
            usize::MAX
        } else {
            total
        }
    }

    /// The count of `name` if it needs no walk: taken already, or being taken (a cycle).
    fn known(&self, name: &str) -> Option<usize> {
        match self.counted.get(name)? {
            Count::Counted(total) => Some(*total),
            Count::Counting => Some(usize::MAX),
        }
    }

    fn start(&mut self, name: &'a str) -> Pending<'a> {
        self.counted.insert(name, Count::Counting);
        let (total, spreads) = match self.fragments.get(name) {
            Some(fragment) => self.scan(&fragment.node.selection_set.node),
            None => (0, Vec::new()),
        };
        Pending {
            name,
            total,
            spreads,
        }
    }

    /// The weight of the selections written in `selection_set` (nested ones included, the
    /// fragments it spreads not), and the names it spreads, once per spread.
    fn scan(&self, selection_set: &'a SelectionSet) -> (usize, Vec<&'a str>) {
        let mut total = 0usize;
        let mut spreads = Vec::new();
        let mut sets = vec![selection_set];
        while let Some(set) = sets.pop() {
            for selection in &set.items {
                total = total.saturating_add((self.weight)(&selection.node));
                if total > self.limit {
                    return (usize::MAX, Vec::new());
                }
                match &selection.node {
                    Selection::Field(field) => sets.push(&field.node.selection_set.node),
                    Selection::InlineFragment(fragment) => {
                        sets.push(&fragment.node.selection_set.node);
                    }
                    Selection::FragmentSpread(spread) => {
                        spreads.push(spread.node.fragment_name.node.as_str());
                    }
                }
            }
        }
        (total, spreads)
    }
}

/// How many nodes `document` comes to written out, up to `limit` (`usize::MAX` past it):
/// those of every operation and of every fragment definition, each with the fragments it
/// spreads written out in place (what async-graphql's checks walk: validation visits the
/// fragment definitions too, used or not). See [`nodes`] for what counts.
pub(super) fn expanded_nodes(document: &ExecutableDocument, limit: usize) -> usize {
    let mut expansion = Expansion::new(&document.fragments, nodes).up_to(limit);
    let mut total = 0usize;
    for (_, operation) in document.operations.iter() {
        total = total.saturating_add(expansion.of(&operation.node.selection_set.node));
        if total > limit {
            return usize::MAX;
        }
    }
    for name in document.fragments.keys() {
        total = total.saturating_add(expansion.of_fragment(name.as_str()));
        if total > limit {
            return usize::MAX;
        }
    }
    total
}

/// The nodes of one selection, its own selection set aside: the selection (field, fragment
/// spread or inline fragment), each of its directives, and each value in its arguments and
/// in its directives' arguments (a list or an object counts one, and so does each of its
/// items). Validation and execution visit all of them once per place the selection is
/// written out.
fn nodes(selection: &Selection) -> usize {
    let (arguments, directives): (&[_], &[Positioned<Directive>]) = match selection {
        Selection::Field(field) => (&field.node.arguments, &field.node.directives),
        Selection::FragmentSpread(spread) => (&[], &spread.node.directives),
        Selection::InlineFragment(fragment) => (&[], &fragment.node.directives),
    };
    let directives = directives.iter().fold(0usize, |total, directive| {
        total
            .saturating_add(1)
            .saturating_add(values(&directive.node.arguments))
    });
    1usize
        .saturating_add(directives)
        .saturating_add(values(arguments))
}

/// How many values `arguments` hold, items of lists and objects included.
fn values(arguments: &[(Positioned<Name>, Positioned<Value>)]) -> usize {
    let mut total = 0usize;
    let mut pending: Vec<&Value> = arguments.iter().map(|(_, value)| &value.node).collect();
    while let Some(value) = pending.pop() {
        total = total.saturating_add(1);
        match value {
            Value::List(items) => pending.extend(items),
            Value::Object(fields) => pending.extend(fields.values()),
            _ => {}
        }
    }
    total
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;

    use async_graphql::parser::parse_query;

    use super::*;

    /// The nodes of the only operation of `query`, written out.
    fn nodes_of_operation(query: &str) -> usize {
        let document = parse_query(query).unwrap();
        let (_, operation) = document.operations.iter().next().unwrap();
        Expansion::new(&document.fragments, nodes).of(&operation.node.selection_set.node)
    }

    fn nodes_of_document(query: &str) -> usize {
        expanded_nodes(&parse_query(query).unwrap(), usize::MAX)
    }

    /// `{ ...F0 }` and fragments `F0`…`F{levels - 1}` that each spread the next one
    /// `fan_out` times, down to `F{levels} { a }`.
    pub(in super::super) fn fanning_out(levels: usize, fan_out: usize) -> String {
        let fragments: String = (0..levels)
            .map(|level| {
                let spreads = format!("...F{} ", level + 1).repeat(fan_out);
                format!("fragment F{level} on Q {{ {spreads}}} ")
            })
            .collect();
        format!("{{ ...F0 }} {fragments}fragment F{levels} on Q {{ a }}")
    }

    #[test]
    fn fields_spreads_inline_fragments_and_nested_selections_each_count_one() {
        assert_eq!(nodes_of_operation("{ a b }"), 2);
        assert_eq!(nodes_of_operation("{ a { b { c } } }"), 3);
        assert_eq!(nodes_of_operation("{ ... on Q { a } }"), 2);
        assert_eq!(
            nodes_of_operation("{ a { ...F } } fragment F on Q { b c }"),
            4,
            "a, the spread, b and c"
        );
        assert_eq!(
            nodes_of_operation("{ a { ... on Q { b { ...F } } } } fragment F on Q { c }"),
            5,
            "a spread inside an inline fragment inside fields is written out too"
        );
    }

    #[test]
    fn directives_and_every_argument_value_count() {
        assert_eq!(nodes_of_operation("{ a(x: 1, y: $v) }"), 3);
        assert_eq!(
            nodes_of_operation("{ a(x: [1, 2, 3], y: {z: [4], w: \"s\"}) }"),
            1 + (1 + 3) + (1 + (1 + 1) + 1),
            "a list counts one and each item one, an object alike"
        );
        assert_eq!(nodes_of_operation("{ a @skip(if: true) @x }"), 1 + 2 + 1);
        assert_eq!(
            nodes_of_operation("{ ...F @include(if: $v) } fragment F on Q { a(x: [1]) }"),
            1 + 2 + 1 + 2
        );
    }

    #[test]
    fn a_fragment_counts_each_time_it_is_spread() {
        assert_eq!(
            nodes_of_operation("{ ...F ...F a { ...F } } fragment F on Q { b c }"),
            3 * (1 + 2) + 1
        );
        assert_eq!(
            nodes_of_operation(&fanning_out(3, 4)),
            1 + 4 + 16 + 64 + 64,
            "the spreads of each level, and 64 copies of `a`"
        );
    }

    #[test]
    fn each_written_selection_is_weighed_once_however_often_it_is_spread() {
        let query = fanning_out(12, 4);
        let document = parse_query(&query).unwrap();
        let (_, operation) = document.operations.iter().next().unwrap();
        let weighed = Cell::new(0usize);
        let total = Expansion::new(&document.fragments, |_: &Selection| {
            weighed.set(weighed.get() + 1);
            1
        })
        .of(&operation.node.selection_set.node);
        let written = 1 + 12 * 4 + 1;
        assert_eq!(weighed.get(), written);
        let spreads: usize = (1..=12).map(|level| 4usize.pow(level)).sum();
        assert_eq!(total, 1 + spreads + 4usize.pow(12), "4^12 copies of `a`");
    }

    #[test]
    fn counting_stops_once_past_its_limit_and_answers_usize_max() {
        let document =
            parse_query("{ ...F } fragment F on Q { a b ...G } fragment G on Q { c d e }").unwrap();
        let (_, operation) = document.operations.iter().next().unwrap();
        let counts = |limit: usize| {
            let weighed = Cell::new(0usize);
            let total = Expansion::new(&document.fragments, |_: &Selection| {
                weighed.set(weighed.get() + 1);
                1
            })
            .up_to(limit)
            .of(&operation.node.selection_set.node);
            (total, weighed.get())
        };
        assert_eq!(counts(7), (7, 7), "at the limit, an exact count");
        assert_eq!(counts(6), (usize::MAX, 7), "one over");
        assert_eq!(counts(2), (usize::MAX, 4), "`G` is never weighed");
        assert_eq!(counts(0), (usize::MAX, 1));
    }

    #[test]
    fn a_fragment_left_half_counted_past_the_limit_reads_as_over_it() {
        let document =
            parse_query("{ ...F } fragment F on Q { ...G ...G } fragment G on Q { a b c }")
                .unwrap();
        let (_, operation) = document.operations.iter().next().unwrap();
        let mut expansion = Expansion::new(&document.fragments, nodes).up_to(7);
        assert_eq!(expansion.of(&operation.node.selection_set.node), usize::MAX);
        assert_eq!(expansion.of_fragment("F"), usize::MAX, "`F` comes to 8");
        assert_eq!(expansion.of_fragment("G"), 3, "`G` was counted in full");
    }

    #[test]
    fn counts_saturate_instead_of_overflowing() {
        assert_eq!(nodes_of_operation(&fanning_out(70, 2)), usize::MAX);
        assert_eq!(nodes_of_document(&fanning_out(70, 2)), usize::MAX);
    }

    #[test]
    fn a_fragment_that_spreads_itself_counts_without_end_and_the_count_ends() {
        assert_eq!(
            nodes_of_operation("{ ...A } fragment A on Q { a ...A }"),
            usize::MAX
        );
        assert_eq!(
            nodes_of_operation(
                "{ ...A } fragment A on Q { ...B ...B } fragment B on Q { b { ...C } } \
                 fragment C on Q { ...A }"
            ),
            usize::MAX,
            "through other fragments and fields"
        );
        assert_eq!(
            nodes_of_document("{ a } fragment Unused on Q { ...Unused }"),
            usize::MAX,
            "validation visits unused fragments too"
        );
    }

    #[test]
    fn a_fragment_met_again_on_another_branch_is_no_cycle() {
        assert_eq!(
            nodes_of_operation(
                "{ ...A ...B } fragment A on Q { ...C } fragment B on Q { ...C } \
                 fragment C on Q { c }"
            ),
            2 + 2 * (1 + 1)
        );
    }

    #[test]
    fn a_spread_of_a_missing_fragment_counts_only_the_spread() {
        assert_eq!(nodes_of_operation("{ a ...Missing }"), 2);
    }

    #[test]
    fn the_document_counts_every_operation_and_every_fragment_definition() {
        let document = parse_query(
            "query A { a ...F } query B { b } fragment F on Q { c d } \
             fragment Unused on Q { ...F }",
        )
        .unwrap();
        let total = (1 + 1 + 2) + 1 + 2 + (1 + 2);
        assert_eq!(expanded_nodes(&document, usize::MAX), total);
        assert_eq!(expanded_nodes(&document, total), total);
        assert_eq!(expanded_nodes(&document, total - 1), usize::MAX);
    }

    #[test]
    fn a_long_chain_of_spreads_is_counted_without_recursion() {
        // Far more than a test thread's stack holds frames for.
        let links = 20_000;
        let fragments: String = (0..links)
            .map(|link| format!("fragment F{link} on Q {{ ...F{} }}\n", link + 1))
            .collect();
        let query = format!("{{ ...F0 }}\n{fragments}fragment F{links} on Q {{ a }}");
        assert_eq!(nodes_of_operation(&query), links + 2);
    }
}
