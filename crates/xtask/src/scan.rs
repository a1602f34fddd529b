//! What one Rust source file uses, read with `syn`: every path (use trees expanded, types,
//! expressions, patterns), the `env!`/`option_env!` variables, and flag attributes that take
//! a value from the environment (`#[arg(env = …)]`). Test code (`#[cfg(test)]` items) is
//! left out: it may read the environment and import freely.

use syn::visit::{self, Visit};

/// One path as written, with the module it was written in (inline `mod` blocks included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedPath {
    /// The segments, e.g. `["std", "env", "var"]` or `["super", "frame", "Frame"]`.
    pub segments: Vec<String>,
    /// Inline module names between the file's module and the path (`mod tests { … }`).
    pub inline: Vec<String>,
}

impl UsedPath {
    pub fn text(&self) -> String {
        self.segments.join("::")
    }
}

/// What a file uses.
#[derive(Debug, Default)]
pub struct Uses {
    pub paths: Vec<UsedPath>,
    /// Variables named by `env!("…")` / `option_env!("…")` (the macro's first literal).
    pub env_macros: Vec<String>,
    /// Attributes such as `#[arg(long, env = "X")]`, as written.
    pub env_attributes: Vec<String>,
}

/// Parses `text` and collects its uses; a file that does not parse is an error.
pub fn scan(text: &str) -> Result<Uses, syn::Error> {
    let file = syn::parse_file(text)?;
    let mut v = Visitor { uses: Uses::default(), inline: Vec::new() };
    v.visit_file(&file);
    Ok(v.uses)
}

struct Visitor {
    uses: Uses,
    inline: Vec<String>,
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("test")
            || (a.path().is_ident("cfg") && a.meta.require_list().is_ok_and(|l| l.tokens.to_string().contains("test")))
    })
}

impl Visitor {
    fn push(&mut self, segments: Vec<String>) {
        if !segments.is_empty() {
            self.uses.paths.push(UsedPath { segments, inline: self.inline.clone() });
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                if n.ident != "self" {
                    full.push(n.ident.to_string());
                }
                self.push(full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                full.push(r.ident.to_string());
                self.push(full);
            }
            syn::UseTree::Glob(_) => {
                let mut full = prefix.clone();
                full.push("*".into());
                self.push(full);
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Visitor {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            _ => return visit::visit_item(self, item),
        };
        if !is_test_only(attrs) {
            visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.inline.push(m.ident.to_string());
        visit::visit_item_mod(self, m);
        self.inline.pop();
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut prefix = Vec::new();
        self.use_tree(&mut prefix, &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.push(p.segments.iter().map(|s| s.ident.to_string()).collect());
        visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        let name = m.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
        if name == "env" || name == "option_env" {
            let var = m.parse_body::<syn::LitStr>().map(|l| l.value()).unwrap_or_else(|_| m.tokens.to_string());
            self.uses.env_macros.push(var);
        }
        visit::visit_macro(self, m);
    }

    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        if ["arg", "clap", "command"].iter().any(|n| a.path().is_ident(n)) {
            if let Ok(list) = a.meta.require_list() {
                let takes_env = list
                    .tokens
                    .clone()
                    .into_iter()
                    .any(|t| matches!(t, proc_macro2::TokenTree::Ident(i) if i == "env"));
                if takes_env {
                    self.uses.env_attributes.push(format!("#[{}({})]", list.path.segments[0].ident, list.tokens));
                }
            }
        }
        visit::visit_attribute(self, a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str) -> Vec<String> {
        scan(text).unwrap().paths.iter().map(UsedPath::text).collect()
    }

    #[test]
    fn use_trees_are_expanded_and_tests_skipped() {
        let got = paths(
            "use std::{env, fs::{self, File}};\nuse crate::frame::Frame as F;\nfn f() { env::var(\"X\"); }\n\
             #[cfg(test)] mod tests { use std::env::var; }",
        );
        assert_eq!(got, ["std::env", "std::fs", "std::fs::File", "crate::frame::Frame", "env::var"]);
    }

    #[test]
    fn inline_modules_are_recorded() {
        let uses = scan("mod inner { use super::x::Y; }").unwrap();
        assert_eq!(uses.paths[0].inline, ["inner"]);
    }

    #[test]
    fn env_macros_and_flag_attributes() {
        let uses = scan(
            "const V: &str = env!(\"CARGO_PKG_VERSION\");\nfn f() { option_env!(\"HOME\"); }\n\
             struct A { #[arg(long, env = \"TOKEN\")] t: String, #[arg(long)] u: String }",
        )
        .unwrap();
        assert_eq!(uses.env_macros, ["CARGO_PKG_VERSION", "HOME"]);
        assert_eq!(uses.env_attributes.len(), 1);
        assert!(uses.env_attributes[0].contains("TOKEN"));
    }
}
