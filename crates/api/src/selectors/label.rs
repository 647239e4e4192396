//! Label selectors: Kubernetes' lexer and parser (`k8s.io/apimachinery/pkg/labels`) with the
//! same error messages, matching, and canonical rendering (`app=x,tier in (a,b)`).

use serde_json::{Map, Value};

use super::SelectorError;
use crate::validation::names;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One requirement: a key, an operator and its values (sorted, deduplicated).
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// A parsed label selector (`app=x,tier in (a,b),!legacy`): requirements sorted by key, all
/// of which must hold. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        Parser::new(s)?.parse().map_err(SelectorError::Parse)
    }

    /// True when the labels (`metadata.labels` map, or `None`) satisfy every requirement.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.matches_with(|k| {
            labels
                .and_then(|l| l.get(k))
                .map(|v| v.as_str().unwrap_or_default())
        })
    }

    /// The same test on a typed label map (controllers hold `BTreeMap`s from k8s-openapi).
    pub fn matches_map(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// The test itself, over any way of looking a label's value up by key.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| r.matches(get(&r.key)))
    }

    /// True when the selector has no requirement (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Self { requirements }
    }
}

/// `app=x,tier in (a,b)`, as Kubernetes renders a selector (the selector column of
/// `kubectl get -o wide`, `kubectl describe`).
impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(Requirement::to_string)
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self.values.first().map(String::as_str).unwrap_or_default();
        let list = self.values.join(",");
        match self.operator {
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::Equals => write!(f, "{}={first}", self.key),
            Operator::DoubleEquals => write!(f, "{}=={first}", self.key),
            Operator::NotEquals => write!(f, "{}!={first}", self.key),
            Operator::In => write!(f, "{} in ({list})", self.key),
            Operator::NotIn => write!(f, "{} notin ({list})", self.key),
            Operator::GreaterThan => write!(f, "{}>{first}", self.key),
            Operator::LessThan => write!(f, "{}<{first}", self.key),
        }
    }
}

impl Requirement {
    /// `NewRequirement`: checks the key, the values and their number for the operator.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, String> {
        let mut errs: Vec<String> = Vec::new();
        let key_errs = names::qualified_name(key);
        if !key_errs.is_empty() {
            errs.push(format!(
                "key: Invalid value: {}: {}",
                quote(key),
                key_errs.join("; ")
            ));
        }
        let mut values = values;
        values.sort();
        values.dedup();
        let shown = format!(
            "[]string{{{}}}",
            values
                .iter()
                .map(|v| quote(v))
                .collect::<Vec<_>>()
                .join(", ")
        );
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                errs.push(format!("values: Invalid value: {shown}: for 'in', 'notin' operators, values set can't be empty"));
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errs.push(format!("values: Invalid value: {shown}: exact-match compatibility requires one single value"));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errs.push(format!("values: Invalid value: {shown}: values set must be empty for exists and does not exist"));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(format!("values: Invalid value: {shown}: for 'Gt', 'Lt' operators, exactly one value is required"));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                            quote(v)
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = names::label_value(v);
            if !msgs.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    quote(v),
                    msgs.join("; ")
                ));
            }
        }
        match errs.len() {
            0 => Ok(Self {
                key: key.to_string(),
                operator,
                values,
            }),
            1 => Err(errs.remove(0)),
            _ => Err(format!("[{}]", errs.join(", "))),
        }
    }

    fn matches(&self, value: Option<&str>) -> bool {
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match (self.operator, value) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, Some(v)) => has(v),
            (Operator::Equals | Operator::DoubleEquals | Operator::In, None) => false,
            (Operator::NotEquals | Operator::NotIn, Some(v)) => !has(v),
            (Operator::NotEquals | Operator::NotIn, None) => true,
            (Operator::Exists, v) => v.is_some(),
            (Operator::DoesNotExist, v) => v.is_none(),
            (Operator::GreaterThan | Operator::LessThan, None) => false,
            (op, Some(v)) => {
                let (Ok(have), Some(Ok(want))) = (
                    v.parse::<i64>(),
                    self.values.first().map(|w| w.parse::<i64>()),
                ) else {
                    return false;
                };
                if op == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

fn quote(s: &str) -> String {
    crate::validation::go::quote(s)
}

/// A selector from a `metav1.LabelSelector` (`matchLabels` + `matchExpressions`) or from a
/// plain map of labels (ReplicationController and Service selectors).
pub fn label_selector_from_object(selector: &Value) -> Result<LabelSelector, SelectorError> {
    let Some(m) = selector.as_object() else {
        return if selector.is_null() {
            Ok(LabelSelector::default())
        } else {
            Err(SelectorError::Parse(
                "a label selector must be an object".into(),
            ))
        };
    };
    let is_label_selector = m
        .keys()
        .all(|k| k == "matchLabels" || k == "matchExpressions")
        && m.values()
            .all(|v| v.is_object() || v.is_array() || v.is_null());
    let mut reqs = Vec::new();
    let plain =
        |labels: &Map<String, Value>, reqs: &mut Vec<Requirement>| -> Result<(), SelectorError> {
            for (k, v) in labels {
                let v = v.as_str().unwrap_or_default().to_string();
                reqs.push(
                    Requirement::new(k, Operator::Equals, vec![v]).map_err(SelectorError::Parse)?,
                );
            }
            Ok(())
        };
    if !is_label_selector || m.is_empty() {
        plain(m, &mut reqs)?;
        return Ok(LabelSelector::from_requirements(reqs));
    }
    if let Some(labels) = m.get("matchLabels").and_then(Value::as_object) {
        plain(labels, &mut reqs)?;
    }
    for expr in m
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
        let op_name = expr
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let op = match op_name {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => {
                return Err(SelectorError::Parse(format!(
                    "{} is not a valid label selector operator",
                    quote(other)
                )));
            }
        };
        let values: Vec<String> = expr
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        reqs.push(Requirement::new(key, op, values).map_err(SelectorError::Parse)?);
    }
    Ok(LabelSelector::from_requirements(reqs))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Identifier(String),
    DoesNotExist,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    In,
    NotIn,
    OpenPar,
    ClosedPar,
    Comma,
    End,
}

impl Token {
    /// The literal Kubernetes quotes in its messages.
    fn literal(&self) -> &str {
        match self {
            Token::Identifier(s) => s,
            Token::DoesNotExist => "!",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::In => "in",
            Token::NotIn => "notin",
            Token::OpenPar => "(",
            Token::ClosedPar => ")",
            Token::Comma => ",",
            Token::End => "",
        }
    }

    /// In value position `in` and `notin` are plain identifiers.
    fn as_value(&self) -> Token {
        match self {
            Token::In | Token::NotIn => Token::Identifier(self.literal().to_string()),
            other => other.clone(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(s: &str) -> Result<Vec<Token>, SelectorError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if is_special(c) {
            let next = chars.get(i + 1).copied();
            let (tok, len) = match (c, next) {
                ('!', Some('=')) => (Token::NotEquals, 2),
                ('=', Some('=')) => (Token::DoubleEquals, 2),
                ('!', _) => (Token::DoesNotExist, 1),
                ('=', _) => (Token::Equals, 1),
                ('(', _) => (Token::OpenPar, 1),
                (')', _) => (Token::ClosedPar, 1),
                (',', _) => (Token::Comma, 1),
                ('>', _) => (Token::GreaterThan, 1),
                (_, _) => (Token::LessThan, 1),
            };
            out.push(tok);
            i += len;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(match word.as_str() {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier(word),
            });
        }
    }
    out.push(Token::End);
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn new(s: &str) -> Result<Self, SelectorError> {
        Ok(Self {
            tokens: lex(s)?,
            pos: 0,
        })
    }

    fn lookahead(&self) -> Token {
        self.tokens
            .get(self.pos)
            .map_or(Token::End, Token::as_value)
    }

    fn consume(&mut self) -> Token {
        let t = self.lookahead();
        self.pos += 1;
        t
    }

    /// The raw next token, for the operator position where `in`/`notin` are keywords.
    fn consume_raw(&mut self) -> Token {
        let t = self.tokens.get(self.pos).cloned().unwrap_or(Token::End);
        self.pos += 1;
        t
    }

    fn parse(&mut self) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        loop {
            match self.lookahead() {
                Token::Identifier(_) | Token::DoesNotExist => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    match self.consume() {
                        Token::End => break,
                        Token::Comma => match self.lookahead() {
                            Token::Identifier(_) | Token::DoesNotExist => {}
                            t => {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                ));
                            }
                        },
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            ));
                        }
                    }
                }
                Token::End => break,
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ));
                }
            }
        }
        Ok(LabelSelector::from_requirements(reqs))
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let mut tok = self.consume();
        let negated = tok == Token::DoesNotExist;
        if negated {
            tok = self.consume();
        }
        let Token::Identifier(key) = tok else {
            return Err(format!("found '{}', expected: identifier", tok.literal()));
        };
        let key_errs = names::qualified_name(&key);
        if !key_errs.is_empty() {
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                quote(&key),
                key_errs.join("; ")
            ));
        }
        if negated {
            return Requirement::new(&key, Operator::DoesNotExist, Vec::new());
        }
        if matches!(self.lookahead(), Token::End | Token::Comma) {
            return Requirement::new(&key, Operator::Exists, Vec::new());
        }
        let op = match self.consume_raw() {
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            t => {
                return Err(format!(
                    "found '{}', expected: {BINARY_OPERATORS}",
                    t.literal()
                ));
            }
        };
        let values = match op {
            Operator::In | Operator::NotIn => self.values()?,
            _ => self.exact_value()?,
        };
        Requirement::new(&key, op, values)
    }

    fn values(&mut self) -> Result<Vec<String>, String> {
        let t = self.consume();
        if t != Token::OpenPar {
            return Err(format!("found '{}' expected: '('", t.literal()));
        }
        match self.lookahead() {
            Token::Identifier(_) | Token::Comma => {
                let list = self.identifiers()?;
                let t = self.consume();
                if t != Token::ClosedPar {
                    return Err(format!("found '{}', expected: ')'", t.literal()));
                }
                Ok(list)
            }
            Token::ClosedPar => {
                self.consume();
                Ok(vec![String::new()])
            }
            t => Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            )),
        }
    }

    fn identifiers(&mut self) -> Result<Vec<String>, String> {
        let mut out: Vec<String> = Vec::new();
        loop {
            match self.consume() {
                Token::Identifier(v) => {
                    out.push(v);
                    match self.lookahead() {
                        Token::Comma => {}
                        Token::ClosedPar => return Ok(out),
                        t => return Err(format!("found '{}', expected: ',' or ')'", t.literal())),
                    }
                }
                Token::Comma => {
                    if out.is_empty() {
                        out.push(String::new());
                    }
                    match self.lookahead() {
                        Token::ClosedPar => {
                            out.push(String::new());
                            return Ok(out);
                        }
                        Token::Comma => {
                            self.consume();
                            out.push(String::new());
                        }
                        _ => {}
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    ));
                }
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        if matches!(self.lookahead(), Token::End | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.consume() {
            Token::Identifier(v) => Ok(vec![v]),
            t => Err(format!("found '{}', expected: identifier", t.literal())),
        }
    }
}
