//! `akv-csi-provider check FILE...`: validates the `provider: azure` SecretProviderClasses in
//! YAML manifests with the parser Mount uses ([`crate::spc::params::parse`]) and reports, per
//! class, the files it would write or every problem, plus warnings about valid-but-suspicious
//! settings. [`check_inputs`] is pure; [`run`] reads the files and prints.

mod manifest;
mod spc;
mod text;

use std::io::{Read, Write};
use std::process::ExitCode;

use serde::Serialize;

use crate::config::{CheckArgs, OutputFormat};
use crate::spc::PlanDefaults;

pub use manifest::{API_GROUP, FoundSpc, find_spcs};
pub use spc::{DEFAULT_MODE, check_spc};

/// One input named on the command line: its text, or why it could not be read.
#[derive(Debug, Clone)]
pub struct Input {
    /// The path as given, or `-` for standard input.
    pub name: String,
    pub content: Result<String, String>,
}

/// Everything `check` found, in input order. Printed as text or serialised as JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Every `provider: azure` SecretProviderClass, valid or not.
    pub documents: Vec<SpcReport>,
    /// SecretProviderClasses for other providers, not checked.
    pub skipped: Vec<Skipped>,
    /// Inputs holding no `provider: azure` SecretProviderClass at all.
    pub without_azure_class: Vec<String>,
    /// Inputs that could not be read or are not YAML (exit code 2).
    pub unreadable: Vec<Unreadable>,
}

/// The verdict on one SecretProviderClass.
#[derive(Debug, Clone, Serialize)]
pub struct SpcReport {
    /// The input it came from (`-` = standard input).
    pub source: String,
    /// 1-based position among the input's non-empty YAML documents.
    pub document: usize,
    /// Line where the document starts.
    pub line: u64,
    /// Position in a `kind: List`'s `items`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    pub api_version: String,
    pub namespace: Option<String>,
    pub name: String,
    pub valid: bool,
    /// `keyvaultName`, when valid.
    pub vault: Option<String>,
    /// The effective cloud, when valid.
    pub cloud: Option<String>,
    /// The identity mode Mount would use, when valid.
    pub identity: Option<String>,
    /// The files a Mount would write (empty when invalid).
    pub files: Vec<FileEntry>,
    /// Every broken rule; non-empty exactly when `valid` is false.
    pub problems: Vec<String>,
    /// Valid but probably not what the author meant.
    pub warnings: Vec<String>,
    /// What the cluster must provide at mount time, which `check` cannot see.
    pub notes: Vec<String>,
}

/// One file a Mount would write.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    /// Path relative to the volume.
    pub path: String,
    /// Octal file mode, e.g. `0644`.
    pub mode: String,
    /// Position in `objects.array`.
    pub object_index: usize,
    pub object_type: String,
    pub object_name: String,
    /// `latest` or the pinned version id (with history: the newest version written).
    pub version: String,
    /// With `objectVersionHistory`: 0 = newest, 1 = the one before, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_index: Option<usize>,
    pub format: String,
    pub encoding: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_pointer: Option<String>,
    /// `objectPart`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    pub optional: bool,
    /// The vault the file is read from: the object's `keyvaultName`, else the class's.
    pub vault: String,
}

/// A SecretProviderClass for another provider.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub source: String,
    pub document: usize,
    pub line: u64,
    pub name: String,
    pub provider: Option<String>,
}

/// An input `check` could not read as YAML.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    pub source: String,
    pub error: String,
}

impl Report {
    /// 2 when an input was unreadable, else 1 when a class is invalid, else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.unreadable.is_empty() {
            2
        } else if self.documents.iter().any(|d| !d.valid) {
            1
        } else {
            0
        }
    }
}

/// Checks every input. No I/O: the caller reads the files.
pub fn check_inputs(inputs: &[Input], defaults: &PlanDefaults) -> Report {
    let mut report = Report::default();
    for input in inputs {
        let text = match &input.content {
            Ok(text) => text,
            Err(error) => {
                report.unreadable.push(Unreadable {
                    source: input.name.clone(),
                    error: error.clone(),
                });
                continue;
            }
        };
        let found = match find_spcs(text) {
            Ok(found) => found,
            Err(error) => {
                report.unreadable.push(Unreadable {
                    source: input.name.clone(),
                    error,
                });
                continue;
            }
        };
        let mut any_azure = false;
        for spc in &found {
            // `Azure` is checked too, so its author learns the driver needs `azure`.
            if spc
                .provider
                .as_deref()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("azure"))
            {
                any_azure = true;
                report.documents.push(check_spc(spc, &input.name, defaults));
            } else {
                report.skipped.push(Skipped {
                    source: input.name.clone(),
                    document: spc.document,
                    line: spc.line,
                    name: spc.name.clone(),
                    provider: spc.provider.clone(),
                });
            }
        }
        if !any_azure {
            report.without_azure_class.push(input.name.clone());
        }
    }
    report
}

/// Reads one command-line argument (`-` = standard input).
pub fn read_input(name: &str) -> Input {
    let content = if name == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map(|_| text)
            .map_err(|e| e.to_string())
    } else {
        std::fs::read_to_string(name).map_err(|e| e.to_string())
    };
    Input {
        name: name.to_owned(),
        content,
    }
}

/// The `check` subcommand: read, check, print the report, return the exit code.
pub fn run(args: &CheckArgs, defaults: &PlanDefaults) -> ExitCode {
    let inputs: Vec<Input> = args.files.iter().map(|f| read_input(f)).collect();
    let report = check_inputs(&inputs, defaults);
    let out = match args.output {
        OutputFormat::Text => text::render(&report),
        OutputFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("error: cannot encode the report as JSON: {e}");
                return ExitCode::from(2);
            }
        },
    };
    // A closed pipe (`check ... | head`) is not worth a panic.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    if args.output == OutputFormat::Text {
        let mut err = std::io::stderr().lock();
        for u in &report.unreadable {
            let _ = writeln!(err, "error: {}: {}", text::source_name(&u.source), u.error);
        }
    }
    ExitCode::from(report.exit_code())
}
