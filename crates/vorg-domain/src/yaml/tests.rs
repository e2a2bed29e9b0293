#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::json;

use super::*;

/// What vorg did before: `yaml_serde` straight into a `serde_json::Value`.
fn unbounded(text: &str) -> Result<Value, String> {
    serde_yaml::from_str::<Value>(text).map_err(|e| e.to_string())
}

/// The classic "billion laughs": ten levels of ten aliases each.
fn laughs(levels: usize) -> String {
    let mut doc = String::from("a0: &a0 [\"lol\"]\n");
    for i in 1..=levels {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    doc
}

#[test]
fn plain_documents_parse_as_before() {
    let docs = [
        "name: x\nengine: dag\nsteps:\n  - id: a\n    prompt: \"hi {{ inputs.q }}\"\n",
        "{\"a\": [1, 2.5, -3, true, null, \"s\"], \"b\": {\"c\": {}}}",
        "{\n\t\"tabbed\": [\n\t\t1\n\t]\n}",
        "n: 1e3\nh: 0x1F\no: 0o17\ninf: .inf\nnan: .nan\nt: ~\nyes: yes\nbig: 18446744073709551615\n",
        "1: one\ntrue: t\n~: n\n",
        "",
        "just a scalar",
        "- a\n- - b\n  - c\n",
        "dup: 1\ndup: 2\n",
    ];
    for doc in docs {
        assert_eq!(
            parse_untrusted(doc).map_err(|e| e.to_string()),
            unbounded(doc),
            "{doc}"
        );
    }
}

#[test]
fn ampersands_and_stars_inside_text_are_text() {
    let doc = "a: \"&x *y\"\nb: '&x *y'\nc: |\n  &anchor\n  *alias\n  <<: merge\nd: >\n  & * <<\ne: x&y*z\nf: \"<<\"\ng: [\"*a\", '&b']\n# &comment *comment\n";
    let v = parse_untrusted(doc).unwrap();
    assert_eq!(v["a"], "&x *y");
    assert_eq!(v["b"], "&x *y");
    assert_eq!(v["c"], "&anchor\n*alias\n<<: merge\n");
    assert_eq!(v["d"], "& * <<\n");
    assert_eq!(v["e"], "x&y*z");
    assert_eq!(v["f"], "<<");
    assert_eq!(v["g"], json!(["*a", "&b"]));
    // A quoted "<<" key is an ordinary key.
    assert_eq!(parse_untrusted("\"<<\": 1").unwrap(), json!({"<<": 1}));
}

#[test]
fn anchors_aliases_and_merge_keys_are_refused_with_their_line() {
    let cases = [
        ("a: 1\nb: &x 2\n", 2, "anchors"),
        ("a: &x\n  k: v\n", 1, "anchors"),
        ("a: &x [1]\n", 1, "anchors"),
        // An alias of no anchor is a syntax error, still refused at its line.
        ("a: 1\nb: *x\n", 2, "anchor"),
        ("base: {k: v}\nother:\n  <<: {k: w}\n", 3, "merge keys (<<)"),
        ("- {<<: {k: v}}\n", 1, "merge keys (<<)"),
    ];
    for (doc, line, what) in cases {
        let err = parse_untrusted(doc).unwrap_err();
        assert_eq!(err.line(), Some(line), "{doc}: {err}");
        assert!(err.to_string().contains(what), "{doc}: {err}");
    }
    // "<<" as a value is just text.
    assert_eq!(parse_untrusted("k: <<").unwrap(), json!({"k": "<<"}));
}

#[test]
fn billion_laughs_is_refused_at_once() {
    let doc = laughs(9);
    assert!(doc.len() < 1024, "{}", doc.len());
    let started = Instant::now();
    let err = parse_untrusted(&doc).unwrap_err();
    assert!(matches!(err, YamlError::AnchorOrAlias { line: 1 }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn the_value_budget_holds_even_without_the_screen() {
    // `build` alone (as if the screen had missed the aliases) stops at its budget instead
    // of expanding 10^6 nodes (here the text, three bytes a leaf, runs out first).
    let doc = laughs(6);
    let started = Instant::now();
    let err = build(&doc, MAX_DEPTH).unwrap_err();
    assert_eq!(
        err,
        YamlError::Expands {
            limit: 2 * doc.len() + 64,
            what: "bytes of text"
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "document expands to more than {} bytes of text",
            2 * doc.len() + 64
        )
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // A document with a few aliases within the budget still builds.
    assert_eq!(
        build("a: &x [1]\nb: *x\n", MAX_DEPTH).unwrap(),
        json!({"a": [1], "b": [1]})
    );
}

#[test]
fn size_and_depth_are_bounded() {
    let big = format!("k: \"{}\"", "x".repeat(MAX_DOCUMENT_BYTES));
    let err = parse_untrusted(&big).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "document is {} bytes, longer than {MAX_DOCUMENT_BYTES} bytes",
            big.len()
        )
    );
    let limits = Limits {
        max_bytes: 10,
        max_depth: 3,
    };
    assert!(matches!(
        parse_untrusted_with("k: 12345678901", limits),
        Err(YamlError::TooLarge { len: 14, limit: 10 })
    ));
    assert!(parse_untrusted_with("[[[1]]]", limits).is_ok());
    let err = parse_untrusted_with("[[[[1]]]]", limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1: document is nested deeper than 3 levels"
    );

    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(parse_untrusted(&deep(MAX_DEPTH)).is_ok());
    let err = parse_untrusted(&deep(MAX_DEPTH + 1)).unwrap_err();
    assert!(err.to_string().contains("deeper than 64 levels"), "{err}");
    // Far deeper than any recursive parser's stack: refused, not a crash.
    let err = parse_untrusted(&deep(100_000)).unwrap_err();
    assert!(matches!(err, YamlError::TooDeep { .. }), "{err}");
    let block: String = (0..200)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    assert!(matches!(
        parse_untrusted(&block),
        Err(YamlError::TooDeep { line: Some(65), .. })
    ));
    // The budget's depth bound, for what the screen would have missed.
    assert!(matches!(
        build(&deep(MAX_DEPTH + 1), MAX_DEPTH),
        Err(YamlError::TooDeep { line: None, .. })
    ));
}

#[test]
fn syntax_errors_keep_yaml_serdes_message_and_line() {
    let err = parse_untrusted("a: [\n").unwrap_err();
    assert!(err.to_string().starts_with("not YAML or JSON: "), "{err}");
    assert!(err.line().is_some(), "{err}");
    assert_eq!(
        parse_untrusted("a: [").unwrap_err().to_string(),
        format!("not YAML or JSON: {}", unbounded("a: [").unwrap_err())
    );
}

#[test]
fn text_only_yaml_serde_accepts_is_refused_with_the_screens_reason() {
    // libyaml takes a tab after a key's colon; saphyr does not. Without the screen's pass
    // the document's aliases would go unchecked, so it is refused, saying where and why.
    assert!(unbounded("a:\tb\n").is_ok());
    let err = parse_untrusted("a:\tb\n").unwrap_err();
    assert_eq!(err.line(), Some(1));
    assert_eq!(
        err.to_string(),
        "not YAML or JSON: ':' must be followed by a valid YAML whitespace at line 1 column 4"
    );
    // A tab after a space is fine for both.
    assert_eq!(parse_untrusted("a: \tb\n").unwrap(), json!({"a": "b"}));
}

/// Nasty YAML-ish text: indicators, quotes, brackets and breaks in any order.
fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("<<: ".to_owned()),
        Just("- ".to_owned()),
        Just(": ".to_owned()),
        Just("? ".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(", ".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("|\n".to_owned()),
        Just(">-\n".to_owned()),
        Just("\n".to_owned()),
        Just("\n  ".to_owned()),
        Just("\t".to_owned()),
        Just("!!str ".to_owned()),
        Just("!tag ".to_owned()),
        Just("---\n".to_owned()),
        Just("...\n".to_owned()),
        Just("# c\n".to_owned()),
        Just("%YAML 1.2\n".to_owned()),
        Just("\\u00e9".to_owned()),
        "[a-z0-9]{1,8}",
    ];
    prop::collection::vec(piece, 0..64).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_parses_or_is_refused_quickly(text in prop_oneof![yamlish(), any::<String>()]) {
        let started = Instant::now();
        let result = parse_untrusted(&text);
        prop_assert!(started.elapsed() < Duration::from_secs(2));
        match result {
            // Accepted: no anchors were there to expand, so the value is what yaml_serde
            // makes of the text.
            Ok(v) => prop_assert_eq!(Ok(v), unbounded(&text)),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn deep_and_long_documents_are_bounded(
        depth in 0usize..400,
        flow in any::<bool>(),
        filler in 0usize..(300 * 1024),
    ) {
        let doc = if flow {
            format!("{}{}{}", "[".repeat(depth), "x".repeat(filler.min(1024)), "]".repeat(depth))
        } else {
            let mut d: String = (0..depth).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
            d.push_str(&format!("{}v: \"{}\"\n", " ".repeat(depth), "y".repeat(filler)));
            d
        };
        // The root mapping of the block form is a level of its own.
        let levels = if flow { depth } else { depth + 1 };
        let started = Instant::now();
        let result = parse_untrusted(&doc);
        prop_assert!(started.elapsed() < Duration::from_secs(5));
        match result {
            Ok(_) => prop_assert!(doc.len() <= MAX_DOCUMENT_BYTES && levels <= MAX_DEPTH),
            Err(YamlError::TooLarge { .. }) => prop_assert!(doc.len() > MAX_DOCUMENT_BYTES),
            Err(YamlError::TooDeep { .. }) => prop_assert!(levels > MAX_DEPTH),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}
