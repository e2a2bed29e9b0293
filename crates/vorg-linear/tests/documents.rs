//! Every document the client sends is valid against Linear's published schema, the
//! vendored schema is Linear's file unchanged, and validation really rejects bad documents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeSet, path::Path};

use apollo_compiler::ExecutableDocument;
use vorg_linear::{documents, fake::schema};

fn errors_of(text: &str) -> String {
    match ExecutableDocument::parse_and_validate(schema().unwrap(), text, "probe.graphql") {
        Ok(_) => panic!("validation accepted:\n{text}"),
        Err(e) => e.errors.to_string(),
    }
}

#[test]
fn the_vendored_schema_is_linears_file_unchanged() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let upstream = manifest.join("../../../shared/linear/schema.graphql");
    if !upstream.exists() {
        eprintln!("{} is not here; nothing to compare", upstream.display());
        return;
    }
    let vendored = std::fs::read(manifest.join("schema/linear.graphql")).unwrap();
    assert!(
        std::fs::read(&upstream).unwrap() == vendored,
        "schema/linear.graphql differs from {}",
        upstream.display()
    );
    assert_eq!(vorg_linear::SCHEMA_SDL.as_bytes(), &vendored[..]);
}

#[test]
fn every_document_validates_against_linears_schema() {
    let schema = schema().unwrap();
    for doc in documents::ALL {
        let valid = ExecutableDocument::parse_and_validate(schema, doc.text, doc.file)
            .unwrap_or_else(|e| panic!("{} is invalid:\n{}", doc.file, e.errors));
        let op = valid
            .operations
            .get(Some(doc.operation))
            .unwrap_or_else(|_| panic!("{} has no operation {}", doc.file, doc.operation));
        let roots: Vec<_> = op.root_fields(&valid).map(|f| f.name.to_string()).collect();
        assert_eq!(roots, [doc.root_field], "{}", doc.file);
    }
}

#[test]
fn every_file_in_src_documents_is_sent_and_checked() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/documents");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".graphql"))
        .collect();
    let listed: BTreeSet<String> = documents::ALL.iter().map(|d| d.file.to_owned()).collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn validation_rejects_an_unknown_field() {
    let errors = errors_of("query { viewer { id nosuchfield } }");
    assert!(
        errors.contains("type `User` does not have a field `nosuchfield`"),
        "{errors}"
    );
}

#[test]
fn validation_rejects_an_argument_of_the_wrong_type() {
    let errors = errors_of(r#"query { issues(first: "ten") { nodes { id } } }"#);
    assert!(errors.contains("expected value of type Int"), "{errors}");
    let errors = errors_of("query Q($id: Int!) { issue(id: $id) { id } }");
    assert!(
        errors.contains("cannot be used for argument `id`"),
        "{errors}"
    );
}

#[test]
fn validation_rejects_a_missing_required_argument() {
    let errors = errors_of("query { issue { id } }");
    assert!(
        errors.contains("required argument `Query.issue(id:)` is not provided"),
        "{errors}"
    );
    let errors = errors_of("mutation { issueCreate { success } }");
    assert!(
        errors.contains("`Mutation.issueCreate(input:)`"),
        "{errors}"
    );
}
