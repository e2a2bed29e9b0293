#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::{Value, json};
use vorg_domain::Role;
use vorg_store::{Backend, Store, testing::TestDb};

use crate::{Org, OrgFiles, Persona, Policies, Schema, Tier};

/// The original system's data files (`../shared/seed/original` beside the checkout, or
/// `VORG_SEED_DIR`). Missing files fail the test: they are the compatibility contract.
pub fn seed_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("VORG_SEED_DIR") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for dir in manifest.ancestors() {
        let candidate = dir.join("shared/seed/original");
        if candidate.is_dir() {
            return candidate;
        }
    }
    let fallback = PathBuf::from("/work/shared/seed/original");
    assert!(
        fallback.is_dir(),
        "the original's data files were not found: set VORG_SEED_DIR to shared/seed/original"
    );
    fallback
}

fn shipped_schema(name: &str) -> Schema {
    let src = OrgFiles::shipped().read(name).unwrap();
    Schema::compile(name, &src.text).unwrap()
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_originals_policies_load_unchanged_and_route_like_the_original() {
    let text = read(seed_dir().join("governance/policies.yaml"));
    let p = Policies::parse(&text, &shipped_schema("schemas/policies.schema.json")).unwrap();
    assert_eq!(p.auto_approve, 50_000_000);
    // Equal to the threshold: automatic. One cent over: an approver.
    assert_eq!(p.route(50_000_000).tier, None);
    assert_eq!(p.route(50_010_000).tier, Some(Tier::Approver));
    assert_eq!(p.route(500_000_000).tier, Some(Tier::Approver));
    assert_eq!(p.route(500_010_000).tier, Some(Tier::Admin));
    assert!(p.route(500_010_000).rule.contains("executive_review_usd"));
    assert!(p.forbids("external_data_sharing_without_dpa"));
    assert_eq!(p.checks_for("code_deploy").len(), 3);
    assert_eq!(p.escalation_matrix["legal"], ["GeneralCounsel"]);
    assert_eq!(p.budgets.org_monthly, None, "the original sets no budgets");
}

#[test]
fn the_shipped_policies_keep_the_originals_values() {
    let text = OrgFiles::shipped()
        .read("governance/policies.yaml")
        .unwrap()
        .text;
    let p = Policies::parse(&text, &shipped_schema("schemas/policies.schema.json")).unwrap();
    assert_eq!(p.auto_approve, 50_000_000);
    assert_eq!(p.human_review, Some((50_000_000, 500_000_000)));
    assert_eq!(p.executive_review, Some((500_000_000, false)));
    assert_eq!(p.budgets.org_monthly, Some(500_000_000));
    assert_eq!(p.approval_expiry_hours, Some(168.0));
}

#[test]
fn a_broken_policies_file_names_the_line_and_reason() {
    let schema = shipped_schema("schemas/policies.schema.json");
    let bad = "spend_thresholds:\n  auto_approve_usd: -5\n  human_review_usd: \"50-500\"\nbudgets:\n  run_usd: lots\n";
    let err = Policies::parse(bad, &schema).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("line 2: spend_thresholds.auto_approve_usd"),
        "{text}"
    );
    assert!(text.contains("line 5: budgets.run_usd"), "{text}");
    assert_eq!(err.problems.len(), 2);
    let err = Policies::parse("spend_thresholds: [\n", &schema).unwrap_err();
    assert!(err.to_string().contains("not valid YAML"), "{err}");
    assert!(err.problems[0].line.is_some());
    let err = Policies::parse(
        "spend_thresholds: {auto_approve_usd: 10}\nsurprise: 1\n",
        &schema,
    )
    .unwrap_err();
    assert!(err.to_string().contains("surprise"), "{err}");
}

#[test]
fn the_originals_personas_validate_against_our_schema_and_theirs() {
    let ours = shipped_schema("schemas/persona.schema.json");
    let theirs_text = read(seed_dir().join("schemas/persona.schema.json"));
    let theirs = Schema::compile("original persona schema", &theirs_text).unwrap();
    let mut count = 0;
    for entry in std::fs::read_dir(seed_dir().join("personas")).unwrap() {
        let doc: Value = serde_json::from_str(&read(entry.unwrap().path())).unwrap();
        assert!(theirs.problems(&doc).is_empty());
        let p = Persona::validate(doc, &ours, None).unwrap();
        assert!(p.max_spend().is_some());
        count += 1;
    }
    assert_eq!(count, 3);
    // Our default org is valid under the original's schema too (a superset, not a fork).
    for src in OrgFiles::shipped().personas().unwrap() {
        let doc: Value = serde_json::from_str(&src.text).unwrap();
        assert!(theirs.problems(&doc).is_empty(), "{}", src.name);
        Persona::validate(doc, &ours, None).unwrap();
    }
}

#[test]
fn persona_problems_are_all_listed_with_their_paths() {
    let schema = shipped_schema("schemas/persona.schema.json");
    let doc =
        json!({"id": "bad id!", "skills": "rust", "risk_limits": {"max_spend": -1}, "tools": [1]});
    let problems = Persona::validate(doc, &schema, Some("other")).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for expected in ["name", "id", "skills", "risk_limits.max_spend", "tools[0]"] {
        assert!(
            paths.contains(&expected),
            "{expected:?} missing from {problems:?}"
        );
    }
    // A missing property is reported at its own path (one wording with the workflow schema).
    assert!(
        problems
            .iter()
            .any(|p| p.path == "name" && p.reason == "required"),
        "{problems:?}"
    );
}

#[test]
fn the_originals_hiring_plan_schema_and_ours_agree_on_a_plan() {
    let theirs = Schema::compile(
        "h",
        &read(seed_dir().join("schemas/hiring_plan.schema.json")),
    )
    .unwrap();
    let ours = shipped_schema("schemas/hiring_plan.schema.json");
    let good = json!({"roles": [{"role_id": "pm", "mission": "m", "deliverables": ["prd"]}],
                      "workstreams": [{"name": "mvp", "owner": "pm", "milestone": "beta"}]});
    let bad = json!({"roles": [{"role_id": "pm"}], "workstreams": []});
    for s in [&theirs, &ours] {
        assert!(s.problems(&good).is_empty());
        assert_eq!(s.problems(&bad).len(), 2);
    }
}

#[test]
fn tiers_are_decided_by_the_right_roles() {
    assert!(Tier::Approver.decidable_by(&[Role::Approver]));
    assert!(Tier::Approver.decidable_by(&[Role::Admin]));
    assert!(!Tier::Admin.decidable_by(&[Role::Approver]));
    assert!(!Tier::Approver.decidable_by(&[Role::Engineer, Role::Growth]));
}

async fn org_loads_files_and_versions_them(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    let dir = tempfile_dir();
    std::fs::create_dir_all(dir.join("governance")).unwrap();
    std::fs::copy(
        seed_dir().join("governance/policies.yaml"),
        dir.join("governance/policies.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("personas")).unwrap();
    for entry in std::fs::read_dir(seed_dir().join("personas")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("personas").join(path.file_name().unwrap())).unwrap();
    }
    let org = Org::load(store.clone(), OrgFiles::from_dir(&dir).unwrap())
        .await
        .unwrap();
    assert_eq!(org.policy_version(), 1);
    assert_eq!(org.policies().await.unwrap().budgets.org_monthly, None);
    // The original's three and the shipped eight.
    assert_eq!(store.count_personas().await.unwrap(), 11);
    assert!(store.get_persona("ceo.prod.v1").await.is_ok());
    // Loading again with the same file adds no version and no personas.
    let org = Org::load(store.clone(), OrgFiles::from_dir(&dir).unwrap())
        .await
        .unwrap();
    assert_eq!(org.policy_version(), 1);
    // An API change stays in force across restarts while the file is unchanged...
    let text = "spend_thresholds: {auto_approve_usd: 10}\n";
    let v = org.put_policies(text, "api", "ann").await.unwrap().unwrap();
    assert_eq!(org.policies().await.unwrap().auto_approve, 10_000_000);
    let org = Org::load(store.clone(), OrgFiles::from_dir(&dir).unwrap())
        .await
        .unwrap();
    assert_eq!(org.policy_version(), v.version);
    // ...and an edited file becomes the next version.
    std::fs::write(
        dir.join("governance/policies.yaml"),
        "spend_thresholds: {auto_approve_usd: 75}\n",
    )
    .unwrap();
    let org = Org::load(store.clone(), OrgFiles::from_dir(&dir).unwrap())
        .await
        .unwrap();
    assert_eq!(org.policies().await.unwrap().auto_approve, 75_000_000);
    let back = org.rollback_policies(1, "ann").await.unwrap().unwrap();
    assert_eq!(back.source, "rollback");
    assert_eq!(org.policies().await.unwrap().auto_approve, 50_000_000);
    // A broken file refuses to load, naming the file and the line.
    std::fs::write(
        dir.join("governance/policies.yaml"),
        "spend_thresholds:\n  auto_approve_usd: cheap\n",
    )
    .unwrap();
    let err = Org::load(store.clone(), OrgFiles::from_dir(&dir).unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("policies.yaml") && text.contains("line 2"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    store.close().await;
}

fn tempfile_dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("vorg-org-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test]
async fn org_loads_files_and_versions_them_sqlite() {
    org_loads_files_and_versions_them(Backend::Sqlite).await
}

#[tokio::test]
async fn org_loads_files_and_versions_them_postgres() {
    org_loads_files_and_versions_them(Backend::Postgres).await
}
