//! MLflow's guard against batched and oversized GraphQL documents
//! (`mlflow/server/graphql/graphql_no_batching.py`), checked on the parsed document before it
//! is validated or run, with MLflow's limits and words: depth 10, 1,000 selections in all, and
//! (its `MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS` / `_MAX_ALIASES` defaults) 10 root fields and
//! 10 aliases in one selection set.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

pub const MAX_DEPTH: usize = 10;
pub const MAX_SELECTIONS: usize = 1000;
pub const MAX_ROOT_FIELDS: usize = 10;
pub const MAX_ALIASES: usize = 10;

/// `None` when the document is within the limits, else MLflow's message.
pub fn check(doc: &ExecutableDocument) -> Option<String> {
    let sets = doc
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set.node)
        .chain(doc.fragments.values().map(|f| &f.node.selection_set.node));
    let (mut root_fields, mut max_aliases, mut total) = (0, 0, 0);
    for set in sets {
        // Depth first with an explicit stack, as MLflow walks it: only fields count, and only
        // a field's own selection set goes one level deeper.
        let mut stack: Vec<(&SelectionSet, usize)> = vec![(set, 1)];
        while let Some((set, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Some(format!("Query exceeds maximum depth of {MAX_DEPTH}"));
            }
            let mut aliases = 0;
            for selection in &set.items {
                let Selection::Field(field) = &selection.node else { continue };
                if depth == 1 {
                    root_fields += 1;
                }
                if field.node.alias.is_some() {
                    aliases += 1;
                }
                if !field.node.selection_set.node.items.is_empty() {
                    stack.push((&field.node.selection_set.node, depth + 1));
                }
                total += 1;
                if total > MAX_SELECTIONS {
                    return Some(format!("Query exceeds maximum total selections of {MAX_SELECTIONS}"));
                }
            }
            max_aliases = max_aliases.max(aliases);
        }
    }
    let (what, value, limit, var) = if root_fields > MAX_ROOT_FIELDS {
        ("root fields", root_fields, MAX_ROOT_FIELDS, "MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS")
    } else if max_aliases > MAX_ALIASES {
        ("aliases", max_aliases, MAX_ALIASES, "MLFLOW_SERVER_GRAPHQL_MAX_ALIASES")
    } else {
        return None;
    };
    Some(format!(
        "GraphQL queries should have at most {limit} {what}, got {value} {what}. To increase the limit, set the {var} \
         environment variable."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn verdict(q: &str) -> Option<String> {
        check(&parse_query(q).unwrap())
    }

    #[test]
    fn a_query_the_ui_sends_passes() {
        let q = "query GetRun($data: MlflowGetRunInput!) @component(name: \"x\") { mlflowGetRun(input: $data) { \
                 run { info { runUuid } data { metrics { key value } } } } }";
        assert_eq!(verdict(q), None);
    }

    #[test]
    fn root_fields_are_counted_across_the_document() {
        let fields: Vec<String> = (0..11).map(|i| format!("k{i}: test(inputString: \"a\") {{ output }}")).collect();
        let msg = verdict(&format!("query {{ {} }}", fields.join(" "))).unwrap();
        assert!(msg.starts_with("GraphQL queries should have at most 10 root fields, got 11 root fields."), "{msg}");
        // Ten is the limit, not over it.
        assert_eq!(verdict(&format!("query {{ {} }}", fields[..10].join(" "))), None);
    }

    #[test]
    fn aliases_are_counted_per_selection_set() {
        let inner: Vec<String> = (0..12).map(|i| format!("e{i}: experiment {{ name }}")).collect();
        let msg = verdict(&format!("query {{ mlflowGetExperiment {{ {} }} }}", inner.join(" "))).unwrap();
        assert!(msg.contains("at most 10 aliases, got 12 aliases"), "{msg}");
    }

    #[test]
    fn depth_and_total_selections_are_bounded() {
        let mut inner = "name".to_string();
        for _ in 0..12 {
            inner = format!("name {{ {inner} }}");
        }
        assert_eq!(verdict(&format!("query {{ a {{ {inner} }} }}")).unwrap(), "Query exceeds maximum depth of 10");
        let many: Vec<String> = (0..1002).map(|i| format!("f{i} {{ name }}")).collect();
        assert_eq!(
            verdict(&format!("query {{ a {{ b {{ {} }} }} }}", many.join(" "))).unwrap(),
            "Query exceeds maximum total selections of 1000"
        );
    }
}
