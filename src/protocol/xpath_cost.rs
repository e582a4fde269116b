//! A static bound on what an XPath filter (RFC 6241 §8.9) can cost in
//! libyang, which evaluates it under the lock every session shares and
//! cannot be interrupted.
//!
//! The cost of an XPath 1.0 expression explodes in predicates: a predicate
//! runs once per candidate node, so a path inside it that can reach the
//! whole tree (`//*`, an absolute path, `..` then back down, `current()`,
//! `deref()`, the ancestor/descendant/following/preceding axes) makes the
//! evaluation quadratic, and nesting such predicates makes it N^depth
//! (`//*[//*[//*[...]]]` held an agent's core for minutes on a tree of a
//! few hundred nodes). So inside predicates only child, self and attribute
//! steps relative to the candidate are accepted; each then visits a node at
//! most once per step, and the whole evaluation stays linear in the tree
//! size times the expression length. Outside predicates everything is
//! allowed. Brackets and parentheses nest at most [`MAX_NESTING`] deep
//! (libyang's parser is recursive).
//!
//! The tokenizer follows XPath 1.0 §3.7, including its rule for telling a
//! multiplication `*` and operator names from name tests.

/// Brackets and parentheses open at once.
pub const MAX_NESTING: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    LBracket,
    RBracket,
    Comma,
    At,
    Colons,
    Dot,
    DotDot,
    /// `/`, `//`, `|`, `+`, `-`, `=`, `!=`, `<`, `<=`, `>`, `>=`, `*`
    /// (multiply), `and`, `or`, `div`, `mod`.
    Operator,
    Slash,
    SlashSlash,
    /// A name test, literal, number or variable: something a path step or
    /// a value ends with.
    Value,
    Axis,
    Function,
}

impl Tok {
    /// XPath 1.0 §3.7: after these (or at the start) a `*` is a name test,
    /// a name is not an operator, and a `/` starts an absolute path.
    fn starts_expression(prev: Option<Tok>) -> bool {
        matches!(
            prev,
            None | Some(
                Tok::At
                    | Tok::Colons
                    | Tok::Open
                    | Tok::LBracket
                    | Tok::Comma
                    | Tok::Operator
                    | Tok::Slash
                    | Tok::SlashSlash
            )
        )
    }
}

fn name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Ok if `expr` stays within the rules above; otherwise why not.
pub fn check(expr: &str) -> Result<(), String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut prev: Option<Tok> = None;
    // Open brackets (true) and parentheses (false), innermost last.
    let mut stack: Vec<bool> = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let in_predicate = stack.iter().any(|b| *b);
        let next = chars.get(i + 1).copied();
        let tok = match c {
            '\'' | '"' => {
                // A literal: up to the matching quote (unterminated: the
                // rest, and libyang will refuse it).
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += 1;
                }
                i += 1;
                prev = Some(Tok::Value);
                continue;
            }
            '(' | '[' => {
                stack.push(c == '[');
                if stack.len() > MAX_NESTING {
                    return Err(format!(
                        "brackets and parentheses nested deeper than {MAX_NESTING}"
                    ));
                }
                i += 1;
                if c == '(' {
                    Tok::Open
                } else {
                    Tok::LBracket
                }
            }
            ')' | ']' => {
                stack.pop();
                i += 1;
                if c == ')' {
                    Tok::Close
                } else {
                    Tok::RBracket
                }
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '@' => {
                i += 1;
                Tok::At
            }
            ':' if next == Some(':') => {
                i += 2;
                Tok::Colons
            }
            '.' if next == Some('.') => {
                i += 2;
                Tok::DotDot
            }
            '.' if !next.is_some_and(|n| n.is_ascii_digit()) => {
                i += 1;
                Tok::Dot
            }
            '/' if next == Some('/') => {
                i += 2;
                Tok::SlashSlash
            }
            '/' => {
                i += 1;
                if in_predicate && Tok::starts_expression(prev) {
                    return Err("an absolute path inside a predicate".into());
                }
                Tok::Slash
            }
            '*' => {
                i += 1;
                if Tok::starts_expression(prev) {
                    Tok::Value
                } else {
                    Tok::Operator
                }
            }
            '|' | '+' | '-' | '=' => {
                i += 1;
                Tok::Operator
            }
            '!' | '<' | '>' => {
                i += if next == Some('=') { 2 } else { 1 };
                Tok::Operator
            }
            '$' => {
                i += 1;
                while i < chars.len() && (name_char(chars[i]) || chars[i] == ':') {
                    i += 1;
                }
                Tok::Value
            }
            d if d.is_ascii_digit() || d == '.' => {
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                Tok::Value
            }
            n if name_start(n) => {
                let start = i;
                while i < chars.len() && name_char(chars[i]) {
                    i += 1;
                }
                // A prefix: `p:name` or `p:*` (not the `::` of an axis).
                if chars.get(i) == Some(&':') && chars.get(i + 1) != Some(&':') {
                    i += 1;
                    if chars.get(i) == Some(&'*') {
                        i += 1;
                    } else {
                        while i < chars.len() && name_char(chars[i]) {
                            i += 1;
                        }
                    }
                }
                let name: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let follows = (chars.get(j).copied(), chars.get(j + 1).copied());
                if !Tok::starts_expression(prev)
                    && matches!(name.as_str(), "and" | "or" | "div" | "mod")
                {
                    Tok::Operator
                } else if follows == (Some(':'), Some(':')) {
                    if in_predicate && !matches!(name.as_str(), "child" | "self" | "attribute") {
                        return Err(format!("the {name} axis inside a predicate"));
                    }
                    Tok::Axis
                } else if follows.0 == Some('(')
                    && !matches!(
                        name.as_str(),
                        "node" | "text" | "comment" | "processing-instruction"
                    )
                {
                    if in_predicate && matches!(name.as_str(), "current" | "deref") {
                        return Err(format!("{name}() inside a predicate"));
                    }
                    Tok::Function
                } else {
                    Tok::Value
                }
            }
            other => return Err(format!("unexpected character '{other}'")),
        };
        if in_predicate {
            match tok {
                Tok::SlashSlash => return Err("'//' inside a predicate".into()),
                Tok::DotDot => return Err("'..' inside a predicate".into()),
                _ => {}
            }
        }
        prev = Some(tok);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn ordinary_filters_pass() {
        for ok in [
            "/wt:system",
            "/wt:servers/wt:server[wt:name='a']/wt:port",
            "/t:tunnel/t:wireguard[t:instance=1]/t:peer[t:instance = 2 and t:enable='true']",
            "//wt:server[wt:port > 80][wt:tag = 'x']",
            "//*",
            "//* | /wt:system/..",
            "/a:b[count(a:c) * 2 > 3]",
            "/a:b[starts-with(a:name, 'x/y//z..')]",
            "/a:b[child::a:c/self::node()][@a:k]",
            "/a:b[a:c[a:d[a:e = 1]]]",
            "/a:b[2 * 3 = 6]",
            "/a:b[a:c = 'x'] / a:d",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn whole_tree_reach_inside_predicates_is_refused() {
        for bad in [
            "//*[//*]",
            "//*[count(//*) >= 0]",
            "/a:b[/a:b]",
            "/a:b[a:c = /a:d]",
            "/a:b[2 * /a:c]",
            "/a:b[a:c and /a:d]",
            "/a:b[../a:b]",
            "/a:b[a:c/../a:d]",
            "/a:b[current()/a:c]",
            "/a:b[deref(a:c)]",
            "/a:b[descendant::a:c]",
            "/a:b[ancestor-or-self::*]",
            "/a:b[following-sibling::*]",
            "/a:b[(/a:c)]",
            "/a:b[f(1, /a:c)]",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
        let deep = format!("{}/a:b{}", "(".repeat(40), ")".repeat(40));
        assert!(check(&deep).is_err());
    }
}
