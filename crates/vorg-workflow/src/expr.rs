//! The state expressions of `graph` edges: `state.key == "value"`, `state.count < 3`,
//! `&&`, `||`, `!`, parentheses, and a bare `state.flag` (truthy). A hand-written parser,
//! small on purpose: anything richer belongs in a node, not in an edge.
//!
//! Expressions come from clients, so the parser is bounded: at most [`MAX_EXPR_BYTES`] of
//! source and [`MAX_EXPR_DEPTH`] levels of `!` and `(`. `&&` and `||` chains are flat lists,
//! so the tree (and the recursion of evaluating or dropping it) is only as deep as the
//! nesting allows, whatever the length.

use serde_json::Value;

/// The longest expression source accepted, in bytes.
pub const MAX_EXPR_BYTES: usize = 4096;

/// The deepest nesting accepted, counting each `!` and each `(` as one level.
pub const MAX_EXPR_DEPTH: usize = 32;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    /// `state.a.b` → `["a", "b"]`.
    Path(Vec<String>),
    Not(Box<Expr>),
    /// Two or more operands, all of which hold.
    And(Vec<Expr>),
    /// Two or more operands, one of which holds.
    Or(Vec<Expr>),
    Compare(Box<Expr>, CmpOp, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Str(String),
    Num(f64),
    Ident(String),
    Dot,
    LParen,
    RParen,
    Not,
    And,
    Or,
    Cmp(CmpOp),
}

fn tokenize(src: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let two = |next: char| chars.get(i + 1) == Some(&next);
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => (tokens.push(Token::LParen), i += 1).1,
            ')' => (tokens.push(Token::RParen), i += 1).1,
            '.' => (tokens.push(Token::Dot), i += 1).1,
            '&' if two('&') => (tokens.push(Token::And), i += 2).1,
            '|' if two('|') => (tokens.push(Token::Or), i += 2).1,
            '=' if two('=') => (tokens.push(Token::Cmp(CmpOp::Eq)), i += 2).1,
            '!' if two('=') => (tokens.push(Token::Cmp(CmpOp::Ne)), i += 2).1,
            '<' if two('=') => (tokens.push(Token::Cmp(CmpOp::Le)), i += 2).1,
            '>' if two('=') => (tokens.push(Token::Cmp(CmpOp::Ge)), i += 2).1,
            '!' => (tokens.push(Token::Not), i += 1).1,
            '<' => (tokens.push(Token::Cmp(CmpOp::Lt)), i += 1).1,
            '>' => (tokens.push(Token::Cmp(CmpOp::Gt)), i += 1).1,
            '"' | '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".into()),
                        Some(&q) if q == c => break,
                        Some('\\') if chars.get(i + 1).is_some() => {
                            s.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
                tokens.push(Token::Str(s));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|ch| ch.is_ascii_digit() || *ch == '.')
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n = text.parse().map_err(|_| format!("bad number {text:?}"))?;
                tokens.push(Token::Num(n));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|ch| ch.is_ascii_alphanumeric() || *ch == '_' || *ch == '-')
                {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// The `!` and `(` levels open at `pos`.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    /// Enters one more level of `!` or `(`; [`Parser::leave`] closes it.
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return Err(format!(
                "expression is nested deeper than {MAX_EXPR_DEPTH} levels"
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut operands = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            operands.push(self.and()?);
        }
        Ok(flat(operands, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut operands = vec![self.unary()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            operands.push(self.unary()?);
        }
        Ok(flat(operands, Expr::And))
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            self.enter()?;
            let operand = self.unary()?;
            self.leave();
            return Ok(Expr::Not(Box::new(operand)));
        }
        let left = self.primary()?;
        if let Some(Token::Cmp(op)) = self.peek().cloned() {
            self.pos += 1;
            let right = self.primary()?;
            return Ok(Expr::Compare(Box::new(left), op, Box::new(right)));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::LParen) => {
                self.enter()?;
                let e = self.or()?;
                self.leave();
                match self.next() {
                    Some(Token::RParen) => Ok(e),
                    _ => Err("expected \")\"".into()),
                }
            }
            Some(Token::Str(s)) => Ok(Expr::Literal(Value::String(s))),
            Some(Token::Num(n)) => Ok(Expr::Literal(
                serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
            )),
            Some(Token::Ident(id)) => match id.as_str() {
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                "null" => Ok(Expr::Literal(Value::Null)),
                "state" => {
                    let mut path = Vec::new();
                    while self.peek() == Some(&Token::Dot) {
                        self.pos += 1;
                        match self.next() {
                            Some(Token::Ident(seg)) => path.push(seg),
                            _ => return Err("expected a name after \".\"".into()),
                        }
                    }
                    if path.is_empty() {
                        return Err("expected \"state.<key>\"".into());
                    }
                    Ok(Expr::Path(path))
                }
                other => Err(format!(
                    "unknown name {other:?} (state values are \"state.<key>\")"
                )),
            },
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end of expression".into()),
        }
    }
}

/// One operand as itself, two or more as `make(operands)`.
fn flat(mut operands: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if operands.len() == 1
        && let Some(only) = operands.pop()
    {
        return only;
    }
    make(operands)
}

impl Expr {
    /// Parses `src`; the error says what was expected, or which bound
    /// ([`MAX_EXPR_BYTES`], [`MAX_EXPR_DEPTH`]) was passed.
    pub fn parse(src: &str) -> Result<Expr, String> {
        if src.len() > MAX_EXPR_BYTES {
            return Err(format!(
                "expression longer than {MAX_EXPR_BYTES} bytes ({} bytes)",
                src.len()
            ));
        }
        let mut p = Parser {
            tokens: tokenize(src)?,
            pos: 0,
            depth: 0,
        };
        let e = p.or()?;
        match p.peek() {
            None => Ok(e),
            Some(t) => Err(format!("unexpected {t:?} after the expression")),
        }
    }

    /// The state keys read (first segment of each path).
    pub fn keys(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_keys(&mut out);
        out
    }

    fn collect_keys<'s>(&'s self, out: &mut Vec<&'s str>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Path(p) => out.extend(p.first().map(String::as_str)),
            Expr::Not(e) => e.collect_keys(out),
            Expr::And(all) | Expr::Or(all) => all.iter().for_each(|e| e.collect_keys(out)),
            Expr::Compare(a, _, b) => {
                a.collect_keys(out);
                b.collect_keys(out);
            }
        }
    }

    /// Evaluates against `state` (a JSON object). Missing values are `null`; comparing
    /// values of different types is false (`!=` true).
    pub fn eval(&self, state: &Value) -> bool {
        truthy(&self.value(state))
    }

    fn value(&self, state: &Value) -> Value {
        match self {
            Expr::Literal(v) => v.clone(),
            Expr::Path(p) => p
                .iter()
                .try_fold(state, |v, seg| v.get(seg))
                .cloned()
                .unwrap_or(Value::Null),
            Expr::Not(e) => Value::Bool(!e.eval(state)),
            Expr::And(all) => Value::Bool(all.iter().all(|e| e.eval(state))),
            Expr::Or(any) => Value::Bool(any.iter().any(|e| e.eval(state))),
            Expr::Compare(a, op, b) => Value::Bool(compare(&a.value(state), *op, &b.value(state))),
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn compare(a: &Value, op: CmpOp, b: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .zip(y.as_f64())
            .and_then(|(x, y)| x.partial_cmp(&y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ if a == b => Some(Ordering::Equal),
        _ => None,
    };
    match (op, ord) {
        (CmpOp::Eq, o) => o == Some(Ordering::Equal),
        (CmpOp::Ne, o) => o != Some(Ordering::Equal),
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
        (_, None) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn eval(src: &str, state: &Value) -> bool {
        Expr::parse(src).unwrap().eval(state)
    }

    #[test]
    fn comparisons_and_logic_follow_precedence() {
        let s = json!({"status": "done", "count": 2, "ok": true, "review": {"score": 7}});
        assert!(eval("state.status == \"done\"", &s));
        assert!(eval("state.count < 3 && state.ok", &s));
        assert!(eval("state.count >= 3 || state.status != 'open'", &s));
        assert!(!eval("!state.ok", &s));
        assert!(eval(
            "!(state.count == 2 && false) && state.review.score > 6.5",
            &s
        ));
        assert!(eval("false && true || true", &s));
        assert!(!eval("state.missing", &s));
        assert!(!eval("state.status < 3", &s));
    }

    #[test]
    fn bad_expressions_say_why() {
        assert!(Expr::parse("state.count <").unwrap_err().contains("end"));
        assert!(
            Expr::parse("count < 3")
                .unwrap_err()
                .contains("state.<key>")
        );
        assert!(
            Expr::parse("state.a == \"x")
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(Expr::parse("(state.a").is_err());
        assert!(Expr::parse("state.a state.b").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        // Before the bounds, 9,000 `!` or 4,000 `(` overflowed the stack and aborted the
        // process; now they are too long, and as deep within the length, too deep.
        for src in [
            format!("{}state.a", "!".repeat(9_000)),
            format!("{}state.a{}", "(".repeat(4_000), ")".repeat(4_000)),
        ] {
            assert!(
                Expr::parse(&src)
                    .unwrap_err()
                    .contains("longer than 4096 bytes")
            );
        }
        for src in [
            format!("{}state.a", "!".repeat(4_000)),
            format!("{}state.a{}", "(".repeat(2_000), ")".repeat(2_000)),
            format!("{}state.a", "!(".repeat(17)) + &")".repeat(17),
        ] {
            assert_eq!(
                Expr::parse(&src).unwrap_err(),
                "expression is nested deeper than 32 levels"
            );
        }
        let ok = format!("{}state.a", "!".repeat(MAX_EXPR_DEPTH));
        assert!(eval(&ok, &json!({"a": true})), "an even number of !");
        let ok = format!(
            "{}state.a{}",
            "(".repeat(MAX_EXPR_DEPTH),
            ")".repeat(MAX_EXPR_DEPTH)
        );
        assert!(eval(&ok, &json!({"a": true})));
        assert!(Expr::parse(&format!("!{ok}")).is_err());
    }

    #[test]
    fn long_sources_are_refused_and_long_chains_stay_flat() {
        let long = format!("state.a == \"{}\"", "x".repeat(MAX_EXPR_BYTES));
        assert_eq!(
            Expr::parse(&long).unwrap_err(),
            format!("expression longer than 4096 bytes ({} bytes)", long.len())
        );
        // The longest chain that fits, at the deepest nesting, is one flat list: evaluating
        // and dropping it recurse once per level, not once per operand (a small stack does).
        let levels = MAX_EXPR_DEPTH / 2;
        let operands = (MAX_EXPR_BYTES - 3 * levels) / 11;
        let chain = vec!["state.a"; operands].join(" && ");
        let src = format!("{}{chain}{}", "!(".repeat(levels), ")".repeat(levels));
        assert!(src.len() <= MAX_EXPR_BYTES);
        let e = Expr::parse(&src).unwrap();
        std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                assert!(e.eval(&json!({"a": true})));
                assert!(!e.eval(&json!({"a": false})));
                drop(e);
            })
            .unwrap()
            .join()
            .unwrap();
        let and = Expr::parse(&chain).unwrap();
        assert!(matches!(&and, Expr::And(all) if all.len() == operands));
        let or = Expr::parse("state.a || state.b || state.c").unwrap();
        assert!(matches!(&or, Expr::Or(any) if any.len() == 3));
        assert!(or.eval(&json!({"c": 1})));
    }

    /// Tokens of the language and a few that are not, in any order.
    fn nasty() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("!".to_owned()),
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just(" && ".to_owned()),
            Just(" || ".to_owned()),
            Just(" == ".to_owned()),
            Just(" <= ".to_owned()),
            Just(" > ".to_owned()),
            Just("state.a".to_owned()),
            Just("state.b.c".to_owned()),
            Just("\"s\\\"".to_owned()),
            Just("'".to_owned()),
            Just("-1.5".to_owned()),
            Just("1.2.3".to_owned()),
            Just("true".to_owned()),
            Just("null".to_owned()),
            Just(".".to_owned()),
            Just("é".to_owned()),
        ];
        prop::collection::vec(piece, 0..200).prop_map(|p| p.concat())
    }

    /// Deep or long inputs, up to 256 KiB: runs of `!` and `(`, long chains, long strings.
    fn huge() -> impl Strategy<Value = String> {
        (0usize..4, 0usize..(256 * 1024)).prop_map(|(kind, n)| match kind {
            0 => format!("{}state.a", "!".repeat(n)),
            1 => format!("{}state.a{}", "(".repeat(n), ")".repeat(n)),
            2 => vec!["state.a"; n / 11 + 1].join(" || "),
            _ => format!("state.a == \"{}\"", "x".repeat(n)),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn any_source_parses_or_says_why(src in prop_oneof![nasty(), huge(), any::<String>()]) {
            let state = json!({"a": true, "b": {"c": 2}});
            match Expr::parse(&src) {
                Ok(e) => {
                    prop_assert!(src.len() <= MAX_EXPR_BYTES);
                    let _ = e.eval(&state);
                    let _ = e.keys();
                }
                Err(why) => prop_assert!(!why.is_empty()),
            }
        }
    }

    #[test]
    fn keys_lists_the_state_keys_read() {
        let e = Expr::parse("state.a == 1 || !state.b.c").unwrap();
        assert_eq!(e.keys(), vec!["a", "b"]);
    }
}
