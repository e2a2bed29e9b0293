//! The state expressions of `graph` edges: `state.key == "value"`, `state.count < 3`,
//! `&&`, `||`, `!`, parentheses, and a bare `state.flag` (truthy). A hand-written parser,
//! small on purpose: anything richer belongs in a node, not in an edge.

use serde_json::Value;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    /// `state.a.b` → `["a", "b"]`.
    Path(Vec<String>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
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

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
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
                let e = self.or()?;
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

impl Expr {
    /// Parses `src`; the error says what was expected.
    pub fn parse(src: &str) -> Result<Expr, String> {
        let mut p = Parser {
            tokens: tokenize(src)?,
            pos: 0,
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
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(a, _, b) => {
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
            Expr::And(a, b) => Value::Bool(a.eval(state) && b.eval(state)),
            Expr::Or(a, b) => Value::Bool(a.eval(state) || b.eval(state)),
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
    fn keys_lists_the_state_keys_read() {
        let e = Expr::parse("state.a == 1 || !state.b.c").unwrap();
        assert_eq!(e.keys(), vec!["a", "b"]);
    }
}
