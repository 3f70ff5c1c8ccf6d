//! Analysis failures as a provider: a target's analysis errors in a configuration with
//! `//command_line_option:allow_analysis_failures` in, an `Analyzed` whose only provider is
//! `AnalysisFailureInfo(causes = depset([AnalysisFailure(label, message)]))` out — how
//! skylib's `analysistest` with `expect_failure = True` sees the error it expects.

use starlark::environment::Module;
use starlark::values::ValueLike;

use super::Analyzed;
use super::values::{TargetInfo, TargetInfoGen};
use crate::core::{Diagnostic, Label};
use crate::loading::{Depset, LabelValue, ProviderInstance, ProviderInstanceGen, make_depset};

const FAILURE_INFO_ID: &str = "<builtin>%AnalysisFailureInfo";
const FAILURE_ID: &str = "<builtin>%AnalysisFailure";

/// The target `label` whose analysis failed with `diagnostics`.
pub(super) fn failed(label: &Label, diagnostics: &[Diagnostic]) -> Analyzed {
    let causes: Vec<(Label, String)> = diagnostics
        .iter()
        .map(|d| (label.clone(), d.message.clone()))
        .collect();
    with_causes(label, &causes)
}

/// The causes a dependency's `AnalysisFailureInfo` carries, if it has one.
pub(super) fn causes_of(analyzed: &Analyzed) -> Vec<(Label, String)> {
    let Some(info) = analyzed.target_info() else {
        return Vec::new();
    };
    Module::with_temp_heap(|module| {
        let info = module.heap().access_owned_frozen_value(&info);
        let Some(failure) = TargetInfo::from_value(info)
            .and_then(|t| t.provider(FAILURE_INFO_ID))
            .and_then(ProviderInstance::from_value)
        else {
            return Vec::new();
        };
        let Some(causes) = failure.field("causes").and_then(Depset::from_value) else {
            return Vec::new();
        };
        causes
            .to_list()
            .iter()
            .filter_map(|c| {
                let c = ProviderInstance::from_value(*c)?;
                let label = c
                    .field("label")?
                    .downcast_ref::<LabelValue>()?
                    .label
                    .clone();
                let message = c.field("message")?.unpack_str()?.to_owned();
                Some((label, message))
            })
            .collect()
    })
}

/// A target that failed for `causes` (its own, or its dependencies').
pub(super) fn with_causes(label: &Label, causes: &[(Label, String)]) -> Analyzed {
    Module::with_temp_heap(|module| with_causes_in(module, label, causes))
}

fn with_causes_in(module: Module, label: &Label, causes: &[(Label, String)]) -> Analyzed {
    let heap = module.heap();
    let items = causes
        .iter()
        .map(|(l, message)| {
            heap.alloc(ProviderInstanceGen {
                id: FAILURE_ID.to_owned(),
                name: "AnalysisFailure".to_owned(),
                fields: [
                    (
                        "label".to_owned(),
                        heap.alloc(LabelValue { label: l.clone() }),
                    ),
                    ("message".to_owned(), heap.alloc(message.as_str())),
                ]
                .into_iter()
                .collect(),
            })
        })
        .collect();
    let causes = make_depset(items, Vec::new(), "default", heap).expect("the default order");
    let info = heap.alloc(ProviderInstanceGen {
        id: FAILURE_INFO_ID.to_owned(),
        name: "AnalysisFailureInfo".to_owned(),
        fields: [("causes".to_owned(), causes)].into_iter().collect(),
    });
    module.set_extra_value(heap.alloc(TargetInfoGen {
        label: label.to_string(),
        providers: vec![info],
    }));
    Analyzed {
        module: Some(module.freeze().expect("providers of plain values freeze")),
        actions: Vec::new(),
        executable: None,
        runfiles: None,
        is_test: false,
        args: Vec::new(),
        test: None,
        incremental: Default::default(),
    }
}
