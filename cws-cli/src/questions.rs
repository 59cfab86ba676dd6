//! The words of every consent question: the libraries hand over a typed
//! [`ConsentRequest`]; this is where it becomes a sentence.

use cws_resolver::ConsentRequest;
use cws_util::duration::format_seconds;

/// The question for a consent request, preceded by what the user should weigh first (one
/// `note:` line each).
pub fn question(request: &ConsentRequest) -> String {
    match request {
        ConsentRequest::Copy {
            plan,
            target_region,
            warnings,
        } => {
            let mut q = String::new();
            for w in warnings {
                q.push_str("note: ");
                q.push_str(w);
                q.push('\n');
            }
            q.push_str(&format!(
                "Cross-region copy required ({} + {}): copy {} ({} GiB) from {} to {}. Continue?",
                format_seconds(plan.estimated_seconds),
                plan.estimated_cost_usd,
                plan.source_ami_id,
                plan.snapshot_gb,
                plan.source_region,
                target_region
            ));
            q
        }
        ConsentRequest::PreferScript { ami_id, tier, .. } => format!(
            "An image is available ({ami_id} via {tier}) and launches faster than script \
             provisioning. Use the image instead?"
        ),
        ConsentRequest::Deregister {
            image,
            delete_snapshots,
        } => {
            let snaps = if image.snapshot_ids.is_empty() {
                String::new()
            } else if *delete_snapshots {
                format!(
                    " Its snapshots ({}) are deleted too.",
                    image.snapshot_ids.join(", ")
                )
            } else {
                format!(
                    " Its snapshots ({}) are kept (pass --delete-snapshots to delete them too).",
                    image.snapshot_ids.join(", ")
                )
            };
            format!(
                "Deregister {} ({}) in {}? New launches from it will fail and this cannot be \
                 undone.{snaps} Continue?",
                image.id, image.name, image.region
            )
        }
        ConsentRequest::Terminate { instance } => format!(
            "Terminate {} ({}) in {}? Its disks are deleted and this cannot be undone.",
            instance.name, instance.id, instance.region
        ),
        other => format!("{other:?}: continue?"),
    }
}
