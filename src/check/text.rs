//! The human form of a [`Report`]: one block per SecretProviderClass, a summary line last.
//! Unreadable inputs go to standard error (see `check::run`), not here.

use std::fmt::Write;

use super::{FileEntry, Report, SpcReport};

/// How an input is named in messages.
pub fn source_name(source: &str) -> &str {
    if source == "-" { "<stdin>" } else { source }
}

/// The whole report as text.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for doc in &report.documents {
        render_spc(&mut out, doc);
    }
    for s in &report.skipped {
        let _ = writeln!(
            out,
            "{}: document {} (line {}): SecretProviderClass {}: skipped (provider {})",
            source_name(&s.source),
            s.document,
            s.line,
            s.name,
            s.provider.as_deref().unwrap_or("not set")
        );
    }
    for source in &report.without_azure_class {
        let _ = writeln!(
            out,
            "{}: no SecretProviderClass with provider: azure found",
            source_name(source)
        );
    }
    let valid = report.documents.iter().filter(|d| d.valid).count();
    let invalid = report.documents.len() - valid;
    let _ = write!(
        out,
        "{} SecretProviderClass{} checked: {valid} valid, {invalid} invalid",
        report.documents.len(),
        if report.documents.len() == 1 {
            ""
        } else {
            "es"
        },
    );
    if !report.unreadable.is_empty() {
        let _ = write!(out, ", {} input(s) unreadable", report.unreadable.len());
    }
    out.push('\n');
    out
}

fn render_spc(out: &mut String, doc: &SpcReport) {
    let name = match &doc.namespace {
        Some(ns) => format!("{ns}/{}", doc.name),
        None => doc.name.clone(),
    };
    let item = doc
        .item
        .map(|i| format!(", items[{i}]"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: document {} (line {}{item}): SecretProviderClass {name}: {}",
        source_name(&doc.source),
        doc.document,
        doc.line,
        if doc.valid { "valid" } else { "invalid" }
    );
    if let (Some(vault), Some(cloud), Some(identity)) = (&doc.vault, &doc.cloud, &doc.identity) {
        let _ = writeln!(out, "  vault {vault} ({cloud}), {identity}");
    }
    if !doc.files.is_empty() {
        // A VAULT column only when objects name vaults of their own (keyvaultName).
        let several = doc
            .files
            .iter()
            .any(|f| Some(&f.vault) != doc.vault.as_ref());
        render_files(out, &doc.files, several);
    }
    for p in &doc.problems {
        let _ = writeln!(out, "  problem: {p}");
    }
    for w in &doc.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    for n in &doc.notes {
        let _ = writeln!(out, "  note: {n}");
    }
}

fn render_files(out: &mut String, files: &[FileEntry], with_vault: bool) {
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            let version = match f.history_index {
                Some(i) if i > 0 => format!("{}~{i}", f.version),
                _ => f.version.clone(),
            };
            let mut format = f.format.clone();
            if f.object_type == "secret" && f.encoding != "utf-8" {
                format = format!("{format}, {}", f.encoding);
            }
            if let Some(p) = &f.json_pointer {
                format = format!("{format}, jsonPointer {p}");
            }
            if let Some(p) = &f.part {
                format = format!("{format}, objectPart {p}");
            }
            if f.optional {
                format.push_str(", optional");
            }
            let mut row = vec![f.path.clone(), f.mode.clone()];
            if with_vault {
                row.push(f.vault.clone());
            }
            row.extend([
                format!("{}/{}", f.object_type, f.object_name),
                version,
                format,
            ]);
            row
        })
        .collect();
    let mut header: Vec<String> = vec!["PATH".into(), "MODE".into()];
    if with_vault {
        header.push("VAULT".into());
    }
    header.extend(["OBJECT", "VERSION", "FORMAT"].map(String::from));
    let mut widths = vec![0usize; header.len()];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::from("  ");
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let w = *w;
            if i == row.len() - 1 {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Input, check_inputs};
    use crate::spc::PlanDefaults;

    #[test]
    fn renders_a_table_and_a_summary() {
        let yaml = "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n\
                    metadata: {name: c}\nspec:\n  provider: azure\n  parameters:\n    keyvaultName: kv1\n    tenantID: t\n    useVMManagedIdentity: \"true\"\n    objects: |\n      array:\n        - |\n          objectName: pass\n          objectType: secret\n          objectVersionHistory: 2\n          optional: true\n";
        let inputs = [
            Input {
                name: "-".into(),
                content: Ok(yaml.into()),
            },
            Input {
                name: "empty.yaml".into(),
                content: Ok("kind: ConfigMap\n".into()),
            },
        ];
        let text = render(&check_inputs(&inputs, &PlanDefaults::default()));
        let want = "\
<stdin>: document 1 (line 1): SecretProviderClass c: valid
  vault kv1 (AzurePublicCloud), system-assigned VM managed identity
  PATH    MODE  OBJECT       VERSION   FORMAT
  pass/0  0644  secret/pass  latest    pem, optional
  pass/1  0644  secret/pass  latest~1  pem, optional
";
        assert!(text.starts_with(want), "{text}");
        assert!(
            text.contains("empty.yaml: no SecretProviderClass with provider: azure found\n"),
            "{text}"
        );
        assert!(
            text.ends_with("1 SecretProviderClass checked: 1 valid, 0 invalid\n"),
            "{text}"
        );
    }
}
