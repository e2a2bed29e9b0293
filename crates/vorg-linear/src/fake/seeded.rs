//! The data the fake starts with: two teams with their states and cycles (one running,
//! two upcoming for ENG), workspace and team labels, projects, and four issues. The ids
//! are the constants in [`super::seed`]; times are relative to the start.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use super::{
    seed,
    store::{Issue, Store, time},
};

impl Store {
    pub fn seeded() -> Self {
        let now = Utc::now();
        let epoch = now - Duration::days(60);
        let user = |id: &str, name: &str, display: &str, admin: bool| {
            json!({ "id": id, "name": name, "displayName": display,
                    "email": format!("{display}@example.com"), "active": true, "admin": admin,
                    "createdAt": time(epoch), "updatedAt": time(epoch),
                    "url": format!("https://linear.app/vorg-fake/profiles/{display}") })
        };
        let team = |id: &str, key: &str, name: &str, color: &str| {
            json!({ "id": id, "key": key, "name": name, "displayName": name,
                    "description": format!("The {name} team"), "color": color,
                    "createdAt": time(epoch), "updatedAt": time(epoch) })
        };
        let teams = vec![
            team(seed::TEAM_ENG, "ENG", "Engineering", "#5e6ad2"),
            team(seed::TEAM_GROWTH, "GRO", "Growth", "#26b5ce"),
        ];
        let mut states = Vec::new();
        for t in &teams {
            let key = t["key"].as_str().unwrap_or_default().to_lowercase();
            for (pos, (slug, name, kind, color)) in [
                ("backlog", "Backlog", "backlog", "#bec2c8"),
                ("todo", "Todo", "unstarted", "#e2e2e2"),
                ("in-progress", "In Progress", "started", "#f2c94c"),
                ("done", "Done", "completed", "#5e6ad2"),
                ("canceled", "Canceled", "canceled", "#95a2b3"),
            ]
            .into_iter()
            .enumerate()
            {
                states.push(json!({ "id": format!("state-{key}-{slug}"), "name": name,
                    "type": kind, "color": color, "position": pos as f64,
                    "description": null, "team": t.clone(),
                    "createdAt": time(epoch), "updatedAt": time(epoch) }));
            }
        }
        let cycle = |id: &str, team: &Value, number: u32, from_days: i64| {
            let starts = now + Duration::days(from_days);
            let ends = starts + Duration::days(14);
            let (past, active, future) = (ends < now, starts <= now && now < ends, starts > now);
            json!({ "id": id, "number": f64::from(number), "name": null, "description": null,
                "startsAt": time(starts), "endsAt": time(ends),
                "completedAt": if past { json!(time(ends)) } else { Value::Null },
                "isActive": active, "isFuture": future, "isPast": past,
                "isNext": future && from_days < 14, "isPrevious": past && from_days > -28,
                "progress": if past { 1.0 } else if active { 0.4 } else { 0.0 },
                "team": team.clone(), "createdAt": time(epoch), "updatedAt": time(epoch) })
        };
        let (eng, gro) = (&teams[0], &teams[1]);
        let cycles = vec![
            cycle(seed::CYCLE_ENG_PAST, eng, 1, -21),
            cycle(seed::CYCLE_ENG_CURRENT, eng, 2, -7),
            cycle(seed::CYCLE_ENG_NEXT, eng, 3, 7),
            cycle(seed::CYCLE_ENG_LATER, eng, 4, 21),
            cycle(seed::CYCLE_GROWTH_CURRENT, gro, 1, -3),
            cycle(seed::CYCLE_GROWTH_NEXT, gro, 2, 11),
        ];
        let label = |id: &str, name: &str, color: &str, team: Option<&Value>| {
            json!({ "id": id, "name": name, "color": color, "description": null,
                "isGroup": false, "team": team.cloned(), "parent": null,
                "createdAt": time(epoch), "updatedAt": time(epoch) })
        };
        let project = |id: &str, name: &str, team: &Value| {
            json!({ "id": id, "name": name, "description": format!("{name} project"),
                "progress": 0.25, "startDate": (now - Duration::days(10)).format("%Y-%m-%d").to_string(),
                "targetDate": (now + Duration::days(30)).format("%Y-%m-%d").to_string(),
                "url": format!("https://linear.app/vorg-fake/project/{id}"),
                "status": { "id": "status-started", "name": "In Progress", "type": "started" },
                "accessibleTeams": { "nodes": [team.clone()] },
                "createdAt": time(epoch), "updatedAt": time(epoch) })
        };
        let mut store = Store {
            users: vec![
                user(seed::VIEWER, "Ada Lovelace", "ada", true),
                user(seed::OTHER_USER, "Grace Hopper", "grace", false),
            ],
            labels: vec![
                label(seed::LABEL_BUG, "Bug", "#eb5757", None),
                label(seed::LABEL_FEATURE, "Feature", "#bb87fc", None),
                label(seed::LABEL_INFRA, "Infra", "#4ea7fc", Some(eng)),
            ],
            projects: vec![
                project(seed::PROJECT_LAUNCH, "Launch", eng),
                project(seed::PROJECT_GROWTH, "Growth push", gro),
            ],
            teams,
            states,
            cycles,
            issues: Vec::new(),
            comments: Vec::new(),
            next_id: 1,
        };
        let seeded = [
            (
                seed::ISSUE_ENG_1,
                seed::TEAM_ENG,
                "Fix the login redirect",
                "state-eng-todo",
                Some(seed::VIEWER),
                Some(seed::CYCLE_ENG_CURRENT),
                seed::LABEL_BUG,
                2,
            ),
            (
                seed::ISSUE_ENG_2,
                seed::TEAM_ENG,
                "Add an audit log",
                "state-eng-in-progress",
                Some(seed::OTHER_USER),
                Some(seed::CYCLE_ENG_CURRENT),
                seed::LABEL_FEATURE,
                3,
            ),
            (
                seed::ISSUE_ENG_3,
                seed::TEAM_ENG,
                "Upgrade the database",
                "state-eng-backlog",
                None,
                None,
                seed::LABEL_INFRA,
                4,
            ),
            (
                seed::ISSUE_GROWTH_1,
                seed::TEAM_GROWTH,
                "Rewrite the landing page",
                "state-gro-todo",
                Some(seed::VIEWER),
                Some(seed::CYCLE_GROWTH_CURRENT),
                seed::LABEL_FEATURE,
                0,
            ),
        ];
        for (i, (id, team, title, state, assignee, cycle, label, priority)) in
            seeded.into_iter().enumerate()
        {
            let at = epoch + Duration::hours(i as i64);
            let number = store.next_number(team);
            store.issues.push(Issue {
                id: id.into(),
                team: team.into(),
                number,
                title: title.into(),
                description: Some(format!("Seeded issue: {title}.")),
                priority,
                state: state.into(),
                assignee: assignee.map(Into::into),
                cycle: cycle.map(Into::into),
                project: None,
                labels: vec![label.into()],
                created_at: at,
                updated_at: at,
            });
        }
        store
    }
}
