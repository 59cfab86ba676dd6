//! Command-line definitions (clap derive). Only parsing lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Launch research workstations from templates, with the fastest reliable machine image.
#[derive(Debug, Parser)]
#[command(name = "cws", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned tables and sentences for people.
    Table,
    /// One JSON document on stdout.
    Json,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Cloud provider: `local` (simulated EC2, the default) or `aws`.
    #[arg(long, global = true, env = "CWS_PROVIDER", value_name = "local|aws")]
    pub provider: Option<String>,
    /// Region (env CWS_REGION, then AWS_REGION; default us-east-1). `ami test` and `ami list`
    /// accept it several times.
    #[arg(long, global = true, env = "CWS_REGION", value_name = "REGION", action = clap::ArgAction::Append)]
    pub region: Vec<String>,
    /// Endpoint URL for the AWS provider (e.g. an EC2 emulator).
    #[arg(long, global = true, env = "CWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS profile for the AWS provider.
    #[arg(long, global = true, env = "AWS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// cws state directory (config, templates, simulated cloud state).
    #[arg(long, global = true, env = "CWS_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Extra template directory, searched first (repeatable).
    #[arg(long, global = true, value_name = "DIR", action = clap::ArgAction::Append)]
    pub templates: Vec<PathBuf>,
    /// Regional fallback graph override (YAML); default $CWS_HOME/regions.yaml if present.
    #[arg(long, global = true, value_name = "FILE")]
    pub regions_file: Option<PathBuf>,
    /// Price overrides (TOML); default $CWS_HOME/prices.toml if present.
    #[arg(long, global = true, value_name = "FILE")]
    pub prices_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// Shorthand for `--output json`.
    #[arg(long, global = true)]
    pub json: bool,
    /// Answer yes to every confirmation (copies, terminations).
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// With --yes, also agree to a copy above the policy's `max_copy_cost_usd`.
    #[arg(long, global = true)]
    pub allow_cost: bool,
    /// Verbose logs on stderr, and the full resolution report.
    #[arg(long, global = true)]
    pub debug: bool,
    /// A shared registry (`cws serve`) for registry commands, e.g. https://registry.uni.edu
    /// (or `cws config set registry.url`); default: the embedded $CWS_HOME/registry.db.
    #[arg(long, global = true, env = "CWS_REGISTRY", value_name = "URL")]
    pub registry: Option<String>,
    /// Bearer token for --registry (or `cws config set registry.token`).
    #[arg(
        long,
        global = true,
        env = "CWS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// How long the AWS provider's read answers are kept on disk under $CWS_HOME/cache, so a
    /// repeat asks nothing (e.g. `2m`, `30s`; `0` keeps nothing). A launch re-checks the
    /// chosen image before spending.
    #[arg(long, global = true, env = "CWS_CACHE_TTL", value_name = "DURATION")]
    pub cache_ttl: Option<String>,
    /// How `ami resolve` and `ami test` ask the provider: `waves` (the launch region first,
    /// the default), `eager` (everything at once: one round trip, more calls) or
    /// `sequential` (one tier at a time, as other tools do; for comparison).
    #[arg(long, global = true, value_enum, value_name = "MODE")]
    pub resolve_mode: Option<ResolveMode>,
}

/// How a resolution asks the provider (see `--resolve-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResolveMode {
    /// The launch region first, fallback regions only when it has nothing.
    Waves,
    /// Every tier's questions at once.
    Eager,
    /// One tier at a time.
    Sequential,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resolve the best image for a template and launch a workstation.
    Launch(LaunchArgs),
    /// Machine images: resolve, test, list, costs.
    #[command(subcommand)]
    Ami(AmiCommand),
    /// Workstations cws launched.
    #[command(subcommand)]
    Instance(InstanceCommand),
    /// Templates: list, show, validate, schema.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// The region catalogue and fallback graph.
    #[command(subcommand)]
    Regions(RegionsCommand),
    /// The audit trail in $CWS_HOME/audit.jsonl: list it, or verify its hash chain.
    Audit(crate::commands::audit::AuditArgs),
    /// Defaults in $CWS_HOME/config.toml.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Serve the REST API and a shared registry (SQLite by default, or PostgreSQL).
    Serve(ServeArgs),
    /// Administer a server's database: bearer tokens.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print shell completions.
    Completions {
        /// Shell.
        shell: clap_complete::Shell,
    },
}

/// How to pick the image.
#[derive(Debug, Args, Clone)]
pub struct ResolveOpts {
    /// Force one tier: direct_mapping, dynamic_search, marketplace, cross_region, script_fallback.
    #[arg(long, value_name = "TIER")]
    pub ami_strategy: Option<String>,
    /// Required architecture (arm64 picks the template's Graviton type).
    #[arg(long, value_name = "arm64|x86_64")]
    pub arch: Option<String>,
}

/// `cws launch`.
#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// Template slug or name (with --listing: the workstation's name).
    #[arg(value_name = "TEMPLATE")]
    pub template: String,
    /// Name for the workstation (unique per region).
    pub name: Option<String>,
    /// Launch from a registry listing, PUBLISHER/SLUG[@VERSION] (its template, the community
    /// tier pinned to it); then the only argument is the workstation's name.
    #[arg(long, value_name = "PUBLISHER/SLUG[@VERSION]")]
    pub listing: Option<String>,
    /// With --listing: accept a version without a verified signature.
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Resolve and show the plan; copy nothing, launch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the resolution preview.
    #[arg(long)]
    pub show_ami_resolution: bool,
    /// Print the AMI vs script cost analysis.
    #[arg(long)]
    pub show_costs: bool,
    /// Prefer script provisioning; ask when an image is available.
    #[arg(long)]
    pub prefer_script: bool,
    /// Wait until the workstation runs and, when it is provisioned by script, until the
    /// script reports success or the step that failed (under `ami_fallback`, a failed script
    /// is replaced by a launch from an image, with consent).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: total time to wait, e.g. 30m, 90s, 1h (default 30m).
    #[arg(long, value_name = "DURATION", requires = "wait")]
    pub timeout: Option<String>,
    /// Instance type (default: the template's, by architecture).
    #[arg(long, value_name = "TYPE")]
    pub instance_type: Option<String>,
    /// Session length in hours for the cost comparison.
    #[arg(long, default_value = "8", value_name = "HOURS")]
    pub hours: String,
    /// Image selection.
    #[command(flatten)]
    pub resolve: ResolveOpts,
}

/// `cws ami ...`.
#[derive(Debug, Subcommand)]
pub enum AmiCommand {
    /// Show how a template resolves in a region, and why.
    Resolve {
        /// Template slug or name.
        template: String,
        /// Image selection.
        #[command(flatten)]
        resolve: ResolveOpts,
        /// Print the readable preview (the default for table output).
        #[arg(long)]
        show_ami_resolution: bool,
    },
    /// Resolve a template in several regions at once.
    Test {
        /// Template slug or name.
        template: String,
        /// Every region in the catalogue.
        #[arg(long)]
        all_regions: bool,
        /// Required architecture.
        #[arg(long, value_name = "arm64|x86_64")]
        arch: Option<String>,
    },
    /// List the images that serve a template.
    List {
        /// Template slug or name.
        #[arg(long)]
        template: String,
        /// Every region in the catalogue.
        #[arg(long)]
        all_regions: bool,
    },
    /// AMI vs script cost analysis for a template.
    Costs {
        /// Template slug or name.
        template: String,
        /// Session length in hours.
        #[arg(long, default_value = "8", value_name = "HOURS")]
        hours: String,
        /// Instance type (default: the template's).
        #[arg(long, value_name = "TYPE")]
        instance_type: Option<String>,
        /// Architecture for the default instance type.
        #[arg(long, value_name = "arm64|x86_64")]
        arch: Option<String>,
        /// Launches per month, for storage amortisation and break-even.
        #[arg(long, default_value_t = 20, value_name = "N")]
        launches_per_month: u32,
        /// Snapshot size in GiB (default: the template's root volume, else 30).
        #[arg(long, value_name = "GIB")]
        snapshot_gb: Option<u32>,
    },
    /// Make an image from a running workstation, tagged for its template.
    Create(AmiCreateArgs),
    /// Make an image and copy it to several regions (re-run to finish what failed).
    CreateMulti(AmiCreateMultiArgs),
    /// Copy an image to another region (asks first, showing time and cost).
    Copy(AmiCopyArgs),
    /// Let other accounts, an organization or everyone launch an image.
    Share(AmiShareArgs),
    /// An image's or a listing's details: creator, rating, versions, who it is shared with.
    Info {
        /// Image id, or PUBLISHER/SLUG[@VERSION].
        #[arg(value_name = "AMI|LISTING[@VERSION]")]
        target: String,
    },
    /// Community listings, grouped by category.
    Browse(AmiBrowseArgs),
    /// Rate a listing 1-5 stars, with an optional review (re-rating replaces yours).
    Rate {
        /// PUBLISHER/SLUG, or an image id a listing holds.
        #[arg(value_name = "LISTING|AMI")]
        target: String,
        /// Stars, 1 to 5.
        stars: String,
        /// Review text (at most 4,000 characters).
        #[arg(long, value_name = "TEXT")]
        review: Option<String>,
    },
    /// A listing's reviews, newest first.
    Reviews {
        /// PUBLISHER/SLUG.
        #[arg(value_name = "LISTING")]
        listing: String,
    },
    /// Report a listing version (security reports from three people quarantine it).
    Report {
        /// PUBLISHER/SLUG[@VERSION] (default: its latest version).
        #[arg(value_name = "LISTING[@VERSION]")]
        target: String,
        /// security, broken, misleading or other.
        #[arg(long, value_name = "REASON", required_unless_present = "clear")]
        reason: Option<String>,
        /// What is wrong.
        #[arg(long, value_name = "TEXT")]
        message: Option<String>,
        /// Clear the version's quarantine and security reports (registry admin).
        #[arg(long, conflicts_with_all = ["reason", "message"])]
        clear: bool,
    },
    /// Revoke a version you published: launches refuse it from then on.
    Revoke {
        /// PUBLISHER/SLUG@VERSION.
        #[arg(value_name = "LISTING@VERSION")]
        target: String,
        /// Why (shown to everyone who tries to launch it).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Sign the revocation (a new revision) with this key (default: `user.signing_key`).
        #[arg(long, value_name = "KEY")]
        sign_with: Option<std::path::PathBuf>,
    },
    /// Write a listing (with its signatures) as one JSON document.
    Export {
        /// PUBLISHER/SLUG[@VERSION].
        #[arg(value_name = "LISTING[@VERSION]")]
        target: String,
        /// Output file (default: stdout).
        #[arg(
            id = "export_file",
            short = 'o',
            long = "output-file",
            value_name = "FILE"
        )]
        output: Option<std::path::PathBuf>,
    },
    /// Add an exported listing to this registry (tampered documents are refused).
    Import {
        /// The export file.
        file: std::path::PathBuf,
    },
    /// Point a channel of your listing (e.g. `stable`) at a version; `latest` moves by itself.
    Channel {
        /// PUBLISHER/SLUG.
        #[arg(value_name = "LISTING")]
        listing: String,
        /// Channel name.
        channel: String,
        /// Version.
        #[arg(id = "channel_version", value_name = "VERSION")]
        version: String,
    },
    /// Deregister an image (asks first; `--yes` to skip).
    Deregister {
        /// Image id.
        ami: String,
        /// Also delete the image's snapshots.
        #[arg(long)]
        delete_snapshots: bool,
    },
    /// Images still being made or copied when their command stopped waiting.
    Status,
}

/// `cws ami browse`.
#[derive(Debug, Args)]
pub struct AmiBrowseArgs {
    /// Only this category (e.g. machine-learning).
    #[arg(long, value_name = "CATEGORY")]
    pub category: Option<String>,
    /// Words to look for in names, descriptions and ids.
    #[arg(long, value_name = "TEXT")]
    pub query: Option<String>,
    /// Only listings shared with this community.
    #[arg(long, value_name = "NAME")]
    pub community: Option<String>,
    /// Order: score (default), rating, downloads or recent.
    #[arg(long, value_name = "ORDER", default_value = "score")]
    pub sort: String,
    /// At most this many listings (0: every one).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
}

/// Publishing options shared by `ami create` and `ami share`.
#[derive(Debug, Args, Clone, Default)]
pub struct PublishArgs {
    /// Listing category (default: the template's category, else `general`).
    #[arg(long, value_name = "CATEGORY")]
    pub category: Option<String>,
    /// Listing version (default: the template's version).
    #[arg(long = "version", value_name = "SEMVER")]
    pub listing_version: Option<String>,
    /// Sign the published version with this OpenSSH ed25519 private key (default: the
    /// `user.signing_key` config key, if set).
    #[arg(long, value_name = "KEY")]
    pub sign_with: Option<std::path::PathBuf>,
}

/// `cws ami create`.
#[derive(Debug, Args)]
#[command(disable_version_flag = true)]
pub struct AmiCreateArgs {
    /// Template the image serves (slug or name).
    pub template: String,
    /// Workstation to image (name or instance id), in --region.
    pub instance: String,
    /// Image name (default: "<template name> <version> <UTC time>").
    #[arg(long)]
    pub name: Option<String>,
    /// Image description.
    #[arg(long)]
    pub description: Option<String>,
    /// Let everyone launch the image, and publish it as a public registry listing.
    #[arg(long)]
    pub public: bool,
    /// Listing options (with --public).
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Wait for the instance to be running instead of failing.
    #[arg(long)]
    pub wait_for_running: bool,
    /// Do not reboot the instance before imaging (faster, less consistent).
    #[arg(long)]
    pub no_reboot: bool,
    /// Extra tag KEY=VALUE (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub tags: Vec<String>,
    /// Total time to wait, e.g. 30m, 90s, 1h (default 30m).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

/// `cws ami create-multi`.
#[derive(Debug, Args)]
pub struct AmiCreateMultiArgs {
    /// What to image and how.
    #[command(flatten)]
    pub create: AmiCreateArgs,
    /// Regions that should hold the image, comma-separated (the instance's may be among them).
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        value_name = "REGION,..."
    )]
    pub regions: Vec<String>,
}

/// `cws ami copy`.
#[derive(Debug, Args)]
pub struct AmiCopyArgs {
    /// Image id.
    pub ami: String,
    /// Region to copy into.
    #[arg(long, value_name = "REGION")]
    pub to: String,
    /// Region the image is in (default: --region).
    #[arg(long, value_name = "REGION")]
    pub from: Option<String>,
    /// Total time to wait, e.g. 30m, 90s, 1h (default 30m).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

/// `cws ami share`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("who").required(true).multiple(true).args(["accounts", "org_arn", "public", "community", "institution", "private"])))]
#[command(group(clap::ArgGroup::new("listing").multiple(false).args(["public", "community", "institution", "private"])))]
#[command(disable_version_flag = true)]
pub struct AmiShareArgs {
    /// Image id.
    pub ami: String,
    /// AWS account id to share with (repeatable).
    #[arg(long = "account", value_name = "ID", action = clap::ArgAction::Append)]
    pub accounts: Vec<String>,
    /// AWS Organizations ARN to share with.
    #[arg(long, value_name = "ARN")]
    pub org_arn: Option<String>,
    /// Share with everyone, and publish a public registry listing.
    #[arg(long)]
    pub public: bool,
    /// Publish a listing for a research community (on AWS the image becomes public: EC2's
    /// "Community AMIs" are public images).
    #[arg(long, value_name = "NAME")]
    pub community: Option<String>,
    /// Publish a listing for an institution's members (grants --org-arn's organization).
    #[arg(long, value_name = "ORG")]
    pub institution: Option<String>,
    /// Publish a listing only you see; changes no permission.
    #[arg(long)]
    pub private: bool,
    /// Listing options.
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Take the permission away instead (publishes nothing).
    #[arg(long, conflicts_with_all = ["community", "institution", "private"])]
    pub revoke: bool,
}

/// `cws instance ...`.
#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Workstations in the region (or all regions).
    List {
        /// Every region in the catalogue.
        #[arg(long)]
        all_regions: bool,
        /// Include terminated instances.
        #[arg(long)]
        all: bool,
    },
    /// One workstation's state.
    Status {
        /// Name or instance id.
        name: String,
    },
    /// Stop a workstation (it can be started again).
    Stop {
        /// Name or instance id.
        name: String,
    },
    /// Start a stopped workstation again (billing resumes while it runs).
    Start {
        /// Name or instance id.
        name: String,
    },
    /// Terminate a workstation (asks first; `--yes` to skip).
    Terminate {
        /// Name or instance id.
        name: String,
    },
}

/// `cws templates ...`.
#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Every template on the search path, and where it came from.
    List,
    /// One template, inheritance merged.
    Show {
        /// Template slug or name.
        name: String,
    },
    /// Check template files.
    Validate {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the template JSON Schema.
    Schema,
}

/// `cws regions ...`.
#[derive(Debug, Subcommand)]
pub enum RegionsCommand {
    /// The region catalogue.
    List,
    /// Fallback regions for one region (or all).
    Fallbacks {
        /// Region code.
        #[arg(id = "fallbacks_region", value_name = "REGION")]
        region: Option<String>,
    },
}

/// `cws config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set a default: provider, region, profile, endpoint, templates, user.name, user.email,
    /// user.handle, user.signing_key, registry.url, registry.token.
    Set {
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// Remove a default.
    Unset {
        /// Key.
        key: String,
    },
    /// Show the defaults and where the file is.
    Show,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks (unique argument names, valid groups) over every
    /// subcommand, which otherwise fire only when that subcommand is run.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}

/// `cws serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default: put a TLS proxy in front to serve others).
    #[arg(long, default_value = "127.0.0.1:8947", value_name = "HOST:PORT")]
    pub addr: String,
    /// The registry database: sqlite://PATH (default $CWS_HOME/registry.db) or
    /// postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "CWS_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Requests per minute per token (per client address without one); 0 for no limit.
    #[arg(long, default_value_t = 1200, value_name = "N")]
    pub rate_limit: u32,
    /// How long a request may take (long operations run as jobs).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub request_timeout: String,
}

/// `cws admin`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Bearer tokens for `cws serve`: create, list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `cws admin token`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token; it is printed once and stored hashed.
    Create {
        /// Who the token acts as: "NAME <EMAIL>".
        #[arg(long, value_name = "NAME <EMAIL>")]
        user: String,
        /// The publisher handle (default: the email's local part).
        #[arg(long, value_name = "HANDLE")]
        handle: Option<String>,
        /// An organization the user belongs to (sees its institutional listings); repeatable.
        #[arg(long, value_name = "ORG", action = clap::ArgAction::Append)]
        org: Vec<String>,
        /// read, rate, publish or admin (each includes the ones before it).
        #[arg(long, value_name = "read|rate|publish|admin")]
        scope: String,
        /// How long it works, e.g. 90d (default: until revoked).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// The server's database (the same default as `cws serve`).
        #[arg(long, env = "CWS_DATABASE_URL", value_name = "URL")]
        database_url: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        /// The server's database (the same default as `cws serve`).
        #[arg(long, env = "CWS_DATABASE_URL", value_name = "URL")]
        database_url: Option<String>,
    },
    /// Revoke a token by id: it stops working at once.
    Revoke {
        /// The token's id (from `cws admin token list`).
        id: String,
        /// The server's database (the same default as `cws serve`).
        #[arg(long, env = "CWS_DATABASE_URL", value_name = "URL")]
        database_url: Option<String>,
    },
}
