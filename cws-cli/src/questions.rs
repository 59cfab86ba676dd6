//! The words of every consent question: the libraries hand over a typed
//! [`ConsentRequest`]; this is where it becomes a sentence.

use cws_resolver::ConsentRequest;
use cws_util::duration::format_seconds;

use crate::sanitize::Shown;

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
                // A warning quotes cloud text: one escaped line each.
                q.push_str(&format!("note: {}\n", Shown(w)));
            }
            q.push_str(&format!(
                "Cross-region copy required ({} + {}): copy {} ({} GiB) from {} to {}. Continue?",
                format_seconds(plan.estimated_seconds),
                plan.estimated_cost_usd,
                Shown(&plan.source_ami_id),
                plan.snapshot_gb,
                plan.source_region,
                target_region
            ));
            q
        }
        ConsentRequest::PreferScript {
            ami_id,
            tier,
            image_seconds,
            script_seconds,
        } => format!(
            "⚠️  Script provisioning requested (~{} estimated)\n🔍 AMI available: {ami_id} via \
             {tier} (~{} launch)\nContinue with script provisioning?",
            cws_util::duration::format_seconds(*script_seconds),
            cws_util::duration::format_seconds(*image_seconds)
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
                    Shown(image.snapshot_ids.join(", "))
                )
            } else {
                format!(
                    " Its snapshots ({}) are kept (pass --delete-snapshots to delete them too).",
                    Shown(image.snapshot_ids.join(", "))
                )
            };
            format!(
                "Deregister {} ({}) in {}? New launches from it will fail and this cannot be \
                 undone.{snaps} Continue?",
                Shown(&image.id),
                Shown(&image.name),
                Shown(&image.region)
            )
        }
        ConsentRequest::ReplaceFailedScript {
            instance,
            outcome,
            ami_id,
            method,
            launch_seconds,
            copy,
        } => format!(
            "The provisioning script of {} ({}) in {} {}. The template's strategy \
             (ami_fallback) falls back to an image: launch {} again from {} (via {}{}{}; billed \
             as a new instance) and terminate {} (its disks are deleted)?",
            Shown(&instance.name),
            Shown(&instance.id),
            Shown(&instance.region),
            Shown(outcome),
            Shown(&instance.name),
            Shown(ami_id),
            Shown(method),
            launch_seconds
                .map(|s| format!(", ready in ~{}", cws_util::duration::format_seconds(s)))
                .unwrap_or_default(),
            copy.as_ref()
                .map(|c| format!(
                    ", after a copy from {} that is asked about next",
                    Shown(&c.source_region)
                ))
                .unwrap_or_default(),
            Shown(&instance.id)
        ),
        ConsentRequest::StartInstance { instance, purpose } => format!(
            "{} ({}) in {} is stopped. Start it {}? It is billed again while it runs.",
            Shown(&instance.name),
            Shown(&instance.id),
            Shown(&instance.region),
            purpose
        ),
        ConsentRequest::Terminate { instance } => format!(
            "Terminate {} ({}) in {}? Its disks are deleted and this cannot be undone.",
            Shown(&instance.name),
            Shown(&instance.id),
            Shown(&instance.region)
        ),
        ConsentRequest::Share {
            image_id: None,
            name,
            region,
            ..
        } => format!(
            "Make the new image `{}` in {} public? Any AWS account will be able to launch it. \
             Continue?",
            Shown(name),
            Shown(region)
        ),
        ConsentRequest::Share {
            image_id: Some(id),
            name,
            region,
            permissions,
            snapshot_ids,
        } => {
            let who: Vec<String> = permissions
                .iter()
                .map(cws_lifecycle::describe_permission)
                .collect();
            let snaps = if snapshot_ids.is_empty() {
                String::new()
            } else {
                format!(
                    " They can also copy its snapshots ({}).",
                    Shown(snapshot_ids.join(", "))
                )
            };
            format!(
                "Share {} (`{}`) in {} with {}? They can launch it.{snaps} Continue?",
                Shown(id),
                Shown(name),
                Shown(region),
                Shown(who.join(", "))
            )
        }
        ConsentRequest::CreateMulti {
            template,
            name,
            instance,
            source_region,
            copies,
            public,
            size_guessed,
            existing_image,
            already_copied,
        } => {
            // Copies an earlier run made: not copied again, but made public too.
            let already = if already_copied.is_empty() {
                String::new()
            } else {
                format!(
                    " (already copied to {}{})",
                    Shown(already_copied.join(", ")),
                    if *public { ", made public too" } else { "" }
                )
            };
            let mut q = match existing_image {
                Some(id) => format!(
                    "Copy image `{}` ({}, made by an earlier run) in {} for {}{}{already}",
                    Shown(name),
                    Shown(id),
                    Shown(source_region),
                    Shown(template),
                    if *public { ", made public," } else { "" }
                ),
                None => format!(
                    "Make image `{}` of {} in {} for {}{}",
                    Shown(name),
                    Shown(instance),
                    Shown(source_region),
                    Shown(template),
                    if *public { ", public," } else { "" }
                ),
            };
            if copies.is_empty() {
                q.push_str(if existing_image.is_some() {
                    ": nothing to copy. Continue?"
                } else {
                    " (no copies). Continue?"
                });
                return q;
            }
            let gb = copies[0].snapshot_gb;
            q.push_str(&format!(
                "{} ({gb} GiB{}) to {} region(s){}:\n",
                if existing_image.is_some() {
                    ""
                } else {
                    " and copy it"
                },
                if *size_guessed { ", a guess" } else { "" },
                copies.len(),
                if existing_image.is_some() {
                    " still without it"
                } else {
                    ""
                }
            ));
            for c in copies {
                q.push_str(&format!(
                    "  {}: ~{}, {} transfer + {}/month storage\n",
                    Shown(&c.target_region),
                    format_seconds(c.estimated_seconds),
                    c.transfer_cost,
                    c.monthly_storage
                ));
            }
            let transfer: cws_cost::Money = copies.iter().map(|c| &c.transfer_cost).sum();
            let storage: cws_cost::Money = copies.iter().map(|c| &c.monthly_storage).sum();
            let slowest = copies
                .iter()
                .map(|c| c.estimated_seconds)
                .max()
                .unwrap_or(0);
            let rounds = copies.len().div_ceil(cws_lifecycle::COPY_CONCURRENCY) as u64;
            q.push_str(&format!(
                "Total: {transfer} transfer + {storage}/month storage, about {} ({} at a time). \
                 Continue?",
                format_seconds(slowest * rounds),
                cws_lifecycle::COPY_CONCURRENCY
            ));
            q
        }
        other => format!("{other:?}: continue?"),
    }
}
