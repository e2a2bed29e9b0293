//! Closed sets of names stored as text (statuses, roles, levels, scopes): one macro gives
//! each its enum, its text, `Display`, `FromStr`, serde, an OpenAPI schema and the
//! `TryFrom<String>` the store uses at the database boundary, so a row holding a name this
//! version does not know is an error there, not a silently wrong value.

/// `names! { /// doc  pub enum Name / UnknownName ("what") { Variant = "text", … } }`
macro_rules! names {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident / $unknown:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        // The texts are the variants' snake_case names (checked by the tests), which is what
        // both serde and the OpenAPI schema derive from this attribute.
        #[serde(rename_all = "snake_case")]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every name, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[doc = concat!("The error for a name that is not one of [`", stringify!($name), "::ALL`].")]
        #[derive(Debug, thiserror::Error)]
        #[error("unknown {} {:?}: expected one of {}", $what, .0, [$($text),+].join(", "))]
        pub struct $unknown(pub String);

        impl std::str::FromStr for $name {
            type Err = $unknown;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .into_iter()
                    .find(|n| n.as_str() == s)
                    .ok_or_else(|| $unknown(s.to_owned()))
            }
        }

        /// The database boundary.
        impl TryFrom<String> for $name {
            type Error = $unknown;

            fn try_from(s: String) -> Result<Self, $unknown> {
                s.parse()
            }
        }
    };
}
pub(crate) use names;

names! {
    /// How much a run-log line matters.
    pub enum LogLevel / UnknownLogLevel ("log level") {
        Debug = "debug",
        Info = "info",
        Warn = "warn",
        Error = "error",
    }
}

names! {
    /// What a budget limits: the organization, one actor (a user's e-mail or a service),
    /// one persona, one API token, one run.
    pub enum BudgetScope / UnknownBudgetScope ("budget scope") {
        Org = "org",
        Actor = "actor",
        Persona = "persona",
        Token = "token",
        Run = "run",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_errors() {
        for l in LogLevel::ALL {
            assert_eq!(l.as_str().parse::<LogLevel>().unwrap(), l);
            assert_eq!(serde_json::to_value(l).unwrap(), l.as_str());
        }
        for s in BudgetScope::ALL {
            assert_eq!(BudgetScope::try_from(s.to_string()).unwrap(), s);
        }
        let e = BudgetScope::try_from("galaxy".to_owned()).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"unknown budget scope "galaxy": expected one of org, actor, persona, token, run"#
        );
        assert!(LogLevel::try_from("loud".to_owned()).is_err());
    }

    /// serde and the OpenAPI document say what `as_str` says, for every name of every set.
    #[test]
    fn serde_and_openapi_use_the_texts() {
        fn check<T: serde::Serialize + utoipa::PartialSchema + Copy>(
            all: &[T],
            text: fn(T) -> &'static str,
        ) {
            let schema = serde_json::to_value(T::schema()).unwrap();
            let listed: Vec<String> = schema["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            for &n in all {
                assert_eq!(serde_json::to_value(n).unwrap(), text(n));
                assert!(
                    listed.iter().any(|l| l == text(n)),
                    "{listed:?} lacks {}",
                    text(n)
                );
            }
        }
        check(&LogLevel::ALL, LogLevel::as_str);
        check(&BudgetScope::ALL, BudgetScope::as_str);
        check(&crate::RunStatus::ALL, crate::RunStatus::as_str);
        check(&crate::ApprovalStatus::ALL, crate::ApprovalStatus::as_str);
        check(&crate::Role::ALL, crate::Role::as_str);
    }
}
