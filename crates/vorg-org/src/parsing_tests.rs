//! Client documents the organization parses: policies (YAML or JSON, through
//! `vorg_domain::yaml::parse_untrusted`) and personas (JSON, through serde_json, whose
//! recursion limit of 128 bounds them), under arbitrary and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::Value;

use crate::{OrgFiles, Persona, Policies, Schema};

fn schema(name: &str) -> Schema {
    let src = OrgFiles::shipped().read(name).unwrap();
    Schema::compile(name, &src.text).unwrap()
}

fn shipped_policies() -> String {
    OrgFiles::shipped()
        .read("governance/policies.yaml")
        .unwrap()
        .text
        .into_owned()
}

#[test]
fn policies_with_anchors_or_aliases_are_refused_at_their_line() {
    let schema = schema("schemas/policies.schema.json");
    // Valid policies before: one allow-list shared through an alias.
    let shared = "spend_thresholds: { auto_approve_usd: 10 }\nmodel_allowlist:\n  admin: &all [\"*\"]\n  engineer: *all\n";
    let err = Policies::parse(shared, &schema).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].line, Some(3));
    assert_eq!(
        err.to_string(),
        "line 3: YAML anchors (&name) and aliases (*name) are not accepted; write the value out"
    );
    let merge = "spend_thresholds:\n  <<: { auto_approve_usd: 10 }\n";
    assert_eq!(
        Policies::parse(merge, &schema).unwrap_err().to_string(),
        "line 2: YAML merge keys (<<) are not accepted; write the keys out"
    );
    // Ten levels of ten aliases: refused at once, never expanded.
    let mut laughs = String::from("spend_thresholds: { auto_approve_usd: 10 }\nx0: &x0 [lol]\n");
    for i in 1..=9 {
        let refs = vec![format!("*x{}", i - 1); 10].join(", ");
        laughs.push_str(&format!("x{i}: &x{i} [{refs}]\n"));
    }
    let started = Instant::now();
    let err = Policies::parse(&laughs, &schema).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(err.problems[0].line, Some(2), "{err}");
}

#[test]
fn policies_too_deep_or_too_large_are_refused_naming_the_limit() {
    let schema = schema("schemas/policies.schema.json");
    let deep = format!(
        "spend_thresholds: {{ auto_approve_usd: 10 }}\nforbidden_actions: {}{}\n",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let err = Policies::parse(&deep, &schema).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("document is nested deeper than 64 levels"),
        "{err}"
    );
    // Line 2 + i opens level i + 1: the 65th level is on line 66.
    let block = format!(
        "spend_thresholds: {{ auto_approve_usd: 10 }}\nx:\n{}",
        (1..70)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect::<String>()
    );
    assert_eq!(
        Policies::parse(&block, &schema).unwrap_err().to_string(),
        "line 66: document is nested deeper than 64 levels"
    );
    let large = format!("{}\n# {}\n", shipped_policies(), "x".repeat(300_000));
    let err = Policies::parse(&large, &schema).unwrap_err();
    assert!(
        err.to_string().contains("longer than 262144 bytes"),
        "{err}"
    );
    // Syntax errors read as before, with their line.
    let err = Policies::parse("spend_thresholds: [\n", &schema).unwrap_err();
    assert!(err.to_string().starts_with("line "), "{err}");
    assert!(err.to_string().contains("not valid YAML: "), "{err}");
}

#[test]
fn persona_json_is_bounded_by_serde_json_recursion_limit() {
    // Personas arrive as JSON bodies (the API's extractor) or files, both read by
    // serde_json, which refuses nesting past 128 levels instead of overflowing the stack.
    // This pins that assumption (a feature such as `unbounded_depth` would lift it).
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let err = serde_json::from_str::<Value>(&nested(128)).unwrap_err();
    assert!(
        err.to_string().contains("recursion limit exceeded"),
        "{err}"
    );
    let err = serde_json::from_str::<Value>(&nested(100_000)).unwrap_err();
    assert!(
        err.to_string().contains("recursion limit exceeded"),
        "{err}"
    );
    let ok = nested(127);
    let doc: Value = serde_json::from_str(&ok).unwrap();
    assert!(Persona::validate(doc, &schema("schemas/persona.schema.json"), None).is_err());
}

/// A character of `base` replaced by, or cut at, a fragment.
fn mutated(base: String) -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("<<: ".to_owned()),
        Just("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_owned()),
        Just("{\"a\": ".to_owned()),
        Just("\"".to_owned()),
        Just("\n  - ".to_owned()),
        Just(": ".to_owned()),
        Just("-1e999".to_owned()),
        Just("18446744073709551616".to_owned()),
        any::<String>(),
    ];
    let len = base.len();
    (0..=len, fragment, any::<bool>()).prop_map(move |(at, frag, cut)| {
        let at = (0..=at)
            .rev()
            .find(|i| base.is_char_boundary(*i))
            .unwrap_or(0);
        if cut {
            format!("{}{frag}", &base[..at])
        } else {
            let end = (at + 1..=len)
                .find(|i| base.is_char_boundary(*i))
                .unwrap_or(len);
            format!("{}{frag}{}", &base[..at], &base[end.min(len)..])
        }
    })
}

fn shipped_persona() -> String {
    OrgFiles::shipped()
        .personas()
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
        .text
        .into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn policies_parse_or_say_why(
        text in prop_oneof![mutated(shipped_policies()), any::<String>()],
    ) {
        let schema = schema("schemas/policies.schema.json");
        let started = Instant::now();
        match Policies::parse(&text, &schema) {
            Ok(p) => { let _ = p.route(1_000_000); }
            Err(e) => {
                prop_assert!(!e.problems.is_empty());
                prop_assert!(!e.to_string().is_empty());
            }
        }
        prop_assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn personas_parse_or_say_why(
        text in prop_oneof![
            mutated(shipped_persona()),
            (0usize..300).prop_map(|n| format!("{}{}", "{\"a\":[".repeat(n), "]}".repeat(n))),
            any::<String>(),
        ],
    ) {
        let schema = schema("schemas/persona.schema.json");
        if let Ok(doc) = serde_json::from_str::<Value>(&text) {
            match Persona::validate(doc, &schema, Some("ceo.org.v1")) {
                Ok(p) => { let _ = (p.id(), p.max_spend(), p.reports_to()); }
                Err(problems) => prop_assert!(problems.iter().all(|p| !p.to_string().is_empty())),
            }
        }
    }
}
