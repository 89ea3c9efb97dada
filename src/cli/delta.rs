//! `kiln repo static-delta`: ostree's static-delta verbs and flags.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kiln_remote::delta::{self, Endianness, GenerateOptions};
use kiln_store::util::format_size;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct StaticDeltaArgs {
    #[command(subcommand)]
    pub verb: DeltaVerb,
}

#[derive(Subcommand, Debug)]
pub enum DeltaVerb {
    /// List static delta files.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Dump information on a delta.
    Show {
        /// FROM-TO, TO, or a path to a superblock.
        delta: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a delta.
    Delete { delta: String },
    /// Generate static delta files.
    Generate(GenerateArgs),
    /// Apply a static delta file (a directory or a superblock file).
    ApplyOffline {
        path: PathBuf,
        /// Copy fallback objects from this local repo (kiln extension).
        #[arg(long, value_name = "REPO")]
        fallback_repo: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Create delta to revision REV (or --to).
    #[arg(value_name = "TO")]
    pub to_pos: Option<String>,
    /// Create delta from revision REV (default: the parent of TO).
    #[arg(long, value_name = "REV")]
    pub from: Option<String>,
    /// Create delta to revision REV.
    #[arg(long, value_name = "REV")]
    pub to: Option<String>,
    /// Create delta from scratch.
    #[arg(long)]
    pub empty: bool,
    /// Inline delta parts into main delta.
    #[arg(long)]
    pub inline: bool,
    /// Disable use of bsdiff.
    #[arg(long)]
    pub disable_bsdiff: bool,
    /// Only generate if a delta does not already exist.
    #[arg(short = 'n', long)]
    pub if_not_exists: bool,
    /// Choose metadata endianness ('l' or 'B').
    #[arg(long, value_name = "ENDIAN")]
    pub set_endianness: Option<String>,
    /// Swap metadata endianness from host order.
    #[arg(long)]
    pub swap_endianness: bool,
    /// Minimum uncompressed size in megabytes for individual HTTP request.
    #[arg(long, value_name = "MB")]
    pub min_fallback_size: Option<u32>,
    /// Maximum size in megabytes to consider bsdiff compression for input files.
    #[arg(long, value_name = "MB")]
    pub max_bsdiff_size: Option<u32>,
    /// Maximum size of delta chunks in megabytes.
    #[arg(long, value_name = "MB")]
    pub max_chunk_size: Option<u32>,
    /// Write the delta to PATH (parts beside it) instead of the repository.
    #[arg(long, value_name = "PATH")]
    pub filename: Option<PathBuf>,
    /// Print what was generated as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(repo: &Option<PathBuf>, args: StaticDeltaArgs) -> Result<ExitCode> {
    let r = super::repo::open(repo)?;
    match args.verb {
        DeltaVerb::List { json } => {
            let names = delta::list(&r)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&names)?);
            } else if names.is_empty() {
                println!("(No static deltas)");
            } else {
                for n in names {
                    println!("{n}");
                }
            }
        }
        DeltaVerb::Show { delta: d, json } => {
            let info = delta::show(&r, &d)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print_show(&d, &info);
            }
        }
        DeltaVerb::Delete { delta: d } => delta::delete(&r, &d)?,
        DeltaVerb::Generate(a) => return generate(&r, a),
        DeltaVerb::ApplyOffline {
            path,
            fallback_repo,
            json,
        } => {
            let opts = delta::ApplyOptions { fallback_repo };
            let info = delta::apply_offline_with(&r, &path, &opts)
                .with_context(|| format!("applying {}", path.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn generate(r: &kiln_store::Repo, a: GenerateArgs) -> Result<ExitCode> {
    let Some(to_rev) = a.to.or(a.to_pos) else {
        bail!("TO must be specified")
    };
    let to = r.resolve_rev(&to_rev)?;
    let from = if a.empty {
        if a.from.is_some() {
            bail!("Cannot specify both --empty and --from=REV");
        }
        None
    } else {
        let rev = a.from.unwrap_or_else(|| format!("{to_rev}^"));
        Some(r.resolve_rev(&rev)?)
    };
    if a.if_not_exists && delta::list(r)?.contains(&delta::name::delta_name(from.as_ref(), &to)) {
        println!(
            "Delta {} already exists.",
            delta::name::delta_name(from.as_ref(), &to)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut endianness = match a.set_endianness.as_deref() {
        None => Endianness::host(),
        Some("l") => Endianness::Little,
        Some("B") => Endianness::Big,
        Some(other) => bail!("Invalid endianness '{other}'"),
    };
    if a.swap_endianness {
        endianness = if endianness == Endianness::Little {
            Endianness::Big
        } else {
            Endianness::Little
        };
    }
    let d = GenerateOptions::default();
    let opts = GenerateOptions {
        min_fallback_size: a.min_fallback_size.unwrap_or(d.min_fallback_size),
        max_chunk_size: a.max_chunk_size.unwrap_or(d.max_chunk_size),
        max_bsdiff_size: a.max_bsdiff_size.unwrap_or(d.max_bsdiff_size),
        bsdiff: !a.disable_bsdiff,
        inline: a.inline,
        filename: a.filename,
        endianness,
        ..d
    };
    if !a.json {
        println!("Generating static delta:");
        println!(
            "  From: {}",
            from.map(|f| f.to_string())
                .unwrap_or_else(|| "empty".into())
        );
        println!("  To:   {to}");
    }
    let info = delta::generate(r, from, to, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_show(id: &str, s: &delta::ShowInfo) {
    println!("Delta: {id}");
    println!("Signed: {}", if s.signed { "yes" } else { "no" });
    match &s.from {
        Some(f) => println!("From: {f}"),
        None => println!("From <scratch>"),
    }
    println!("To: {}", s.to);
    let e = match s.endianness {
        Endianness::Little => "little",
        Endianness::Big => "big",
    };
    println!(
        "Endianness: {e}{}",
        if s.endianness_heuristic {
            " (heuristic)"
        } else {
            ""
        }
    );
    println!("Timestamp: {}", s.timestamp);
    println!("Number of parents: {}", s.n_parents);
    println!("Number of fallback entries: {}", s.fallback.len());
    for f in &s.fallback {
        println!("  {}", f.checksum);
    }
    let (fs, fu) = s.fallback_size();
    println!("Total Fallback Size: {fs} ({})", nbsp(&format_size(fs)));
    println!(
        "Total Fallback Uncompressed Size: {fu} ({})",
        nbsp(&format_size(fu))
    );
    println!("Number of parts: {}", s.parts.len());
    for (i, p) in s.parts.iter().enumerate() {
        println!(
            "PartMeta{i}: nobjects={} size={} usize={}",
            p.objects, p.size, p.usize
        );
        println!(
            "PartPayload{i}: nmodes={} nxattrs={} blobsize={} opsize={}",
            p.nmodes, p.nxattrs, p.blobsize, p.opsize
        );
        let o = &p.ops;
        println!(
            "PartPayloadOps{i}: openspliceclose={} open={} write={} setread={} unsetread={} close={} bspatch={}",
            o.openspliceclose, o.open, o.write, o.setread, o.unsetread, o.close, o.bspatch
        );
    }
    let (ps, pu) = s.part_size();
    println!("Total Part Size: {ps} ({})", nbsp(&format_size(ps)));
    println!(
        "Total Part Uncompressed Size: {pu} ({})",
        nbsp(&format_size(pu))
    );
    let (ts, tu) = (ps + fs, pu + fu);
    println!("Total Size: {ts} ({})", nbsp(&format_size(ts)));
    println!("Total Uncompressed Size: {tu} ({})", nbsp(&format_size(tu)));
}

/// GLib's `g_format_size` puts a no-break space before the unit.
/// (but "N bytes" keeps a plain space).
fn nbsp(s: &str) -> String {
    if s.ends_with("byte") || s.ends_with("bytes") {
        return s.to_string();
    }
    s.replace(' ', "\u{a0}")
}
