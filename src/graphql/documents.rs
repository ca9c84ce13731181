//! Parsed GraphQL documents, kept by their text: storefronts send the same few documents over and
//! over, and async-graphql's parser costs more than copying a parsed document (a product detail
//! sent by POST ran ~25 % slower than the same read over REST, whose documents are parsed once at
//! start). Bounded by an estimate of the documents' size; only documents that parse are kept.

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;

/// Room for the parsed documents (estimated at 8 bytes of tree per byte of text).
const MAX_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<String, Arc<ExecutableDocument>> for Weight {
    fn weight(&self, text: &String, _: &Arc<ExecutableDocument>) -> u64 {
        text.len() as u64 * 9 + 256
    }
}

pub struct ParsedDocuments {
    store: quick_cache::sync::Cache<String, Arc<ExecutableDocument>, Weight>,
}

impl Default for ParsedDocuments {
    fn default() -> Self {
        ParsedDocuments {
            store: quick_cache::sync::Cache::with_weighter(2048, MAX_BYTES, Weight),
        }
    }
}

impl ParsedDocuments {
    /// Gives `request` its parsed document: a copy of the kept one, or its own parse (then kept).
    /// A document that does not parse is left for execution to refuse.
    pub fn prepare(&self, request: &mut async_graphql::Request) {
        if request.query.is_empty() {
            return;
        }
        if let Some(doc) = self.store.get(request.query.as_str()) {
            request.set_parsed_query((*doc).clone());
            return;
        }
        if let Ok(doc) = request.parsed_query() {
            let doc = Arc::new(doc.clone());
            self.store.insert(request.query.clone(), doc);
        }
    }

    /// Documents kept.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::ParsedDocuments;

    #[test]
    fn kept_documents_are_reused_and_broken_ones_are_not_kept() {
        let docs = ParsedDocuments::default();
        let mut a = async_graphql::Request::new("{ products { total } }");
        docs.prepare(&mut a);
        assert_eq!(docs.len(), 1);
        let mut b = async_graphql::Request::new("{ products { total } }");
        docs.prepare(&mut b);
        assert_eq!(docs.len(), 1);
        let doc = b.parsed_query().expect("the kept parse");
        assert_eq!(doc.operations.iter().count(), 1);
        let mut broken = async_graphql::Request::new("{ products { total ");
        docs.prepare(&mut broken);
        assert_eq!(docs.len(), 1);
        assert!(broken.parsed_query().is_err());
    }
}
