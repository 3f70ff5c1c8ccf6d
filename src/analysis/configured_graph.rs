//! The configured target graph: the loaded graph, the requested labels and the top-level
//! configuration in; every configured target they reach (a rule target in each configuration
//! it is needed in) out, with its attributes resolved in that configuration and its
//! dependency edges, each to the configuration the edge's transition gives: the same one,
//! the exec or host configuration (`cfg = "exec"`, `"host"`), or what a Starlark transition
//! returns (one configuration per split key); then the dependency's incoming transition
//! (`rule(cfg = ...)`), as in Bazel.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use starlark::values::{OwnedFrozenValue, ValueLike};

use super::configuration::ConfigKind;
use super::configuration::{Config, ConfiguredLabel};
use super::configured::Settings;
use super::platforms::{Platform, PlatformConfig};
use super::toolchains::{self, ResolutionError, Resolved};
use super::transitions;
use crate::core::{Diagnostic, Label};
use crate::graph::TargetGraph;
use crate::loading::{AttrValue, FrozenRuleCallable, RuleTarget, TargetKind};

/// One dependency edge of a configured target.
#[derive(Clone, Debug)]
pub struct DepEdge {
    pub attr: String,
    /// The label as the attribute names it (a rule, a source or generated file).
    pub label: Label,
    /// The split key of a split transition (`ctx.split_attr`); empty otherwise.
    pub split_key: String,
    /// The configuration the dependency is in.
    pub config: Config,
    /// The transition the edge took, as `cquery --output=transitions` names it
    /// (`NoTransition`, `ExecutionTransition`, `HostTransition`, `StarlarkTransition`,
    /// `SplitTransition`, `AnalysisTestTransition`), then the dependency's incoming one.
    pub transition: String,
    /// The configured rule target the edge needs analysed: the rule itself, or the rule
    /// generating a file; none for a source file or a package group.
    pub rule: Option<ConfiguredLabel>,
}

/// A configured rule target before analysis.
pub struct Node {
    /// The attributes with every select() resolved in this configuration (none when they
    /// are the loaded ones: no select, nothing copied), or why they cannot be.
    pub rule: Result<Option<Arc<RuleTarget>>, Diagnostic>,
    pub deps: Vec<DepEdge>,
    /// Attributes with a Starlark transition (`ctx.split_attr`; `ctx.attr` a list).
    pub split_attrs: BTreeSet<String>,
    /// What toolchain resolution gave the target (its implementations are edges of
    /// `deps`, in the target's configuration, as in Bazel 4); none when it asks nothing.
    pub toolchains: Option<Arc<Result<Resolved, ResolutionError>>>,
    /// The platform the target's configuration builds for (`ctx.target_platform_has_constraint`).
    pub platform: Arc<Platform>,
    /// Whether an attribute of its rule applies aspects: their implementations read what
    /// they propagate to, beyond the dependencies' results.
    pub applies_aspects: bool,
}

impl Node {
    /// The configured attributes: the resolved ones, or `loaded` when there was no select.
    pub fn configured<'a>(
        &'a self,
        loaded: &'a RuleTarget,
    ) -> Result<&'a RuleTarget, &'a Diagnostic> {
        match &self.rule {
            Ok(Some(resolved)) => Ok(resolved),
            Ok(None) => Ok(loaded),
            Err(d) => Err(d),
        }
    }
}

/// Every configured target reachable from the roots.
pub struct ConfiguredGraph {
    pub nodes: HashMap<ConfiguredLabel, Node>,
    /// Each requested label and the configured target it is (its rule's incoming transition
    /// applied to the top-level configuration).
    pub roots: Vec<(Label, ConfiguredLabel)>,
    /// Requested targets whose rule's incoming transition failed (they are not analysed).
    pub errors: Vec<Diagnostic>,
}

/// A rule class's declaration and transitions, found once per rule class.
struct RuleTransitions {
    callable: OwnedFrozenValue,
}

impl RuleTransitions {
    fn has_transitions(&self) -> bool {
        let frozen = self.frozen();
        frozen.incoming.is_some() || !frozen.attr_transitions.is_empty()
    }

    fn frozen(&self) -> &FrozenRuleCallable {
        self.callable
            .value()
            .downcast_ref::<FrozenRuleCallable>()
            .expect("rule_callable returns rules")
    }
}

struct Builder<'g> {
    graph: &'g TargetGraph<'g>,
    platforms: &'g PlatformConfig,
    /// The platform each kind of configuration builds for, read once.
    platform_of: HashMap<ConfigKind, Arc<Platform>>,
    settings: HashMap<Config, Arc<Settings>>,
    rules: HashMap<(String, String), Option<Arc<RuleTransitions>>>,
    incoming: HashMap<(Label, Config), Result<Config, Diagnostic>>,
    /// The private label attributes of a list of aspects (`aspects::tool_labels`).
    aspect_tools: HashMap<Vec<String>, Arc<super::aspects::ToolLabels>>,
    /// Targets applying aspects with private label attributes, not yet followed to every
    /// configuration the aspects reach.
    aspect_requests: Vec<AspectRequest>,
}

/// A target applying aspects whose private attributes name dependencies: the aspects reach
/// `starts` and propagate from there; their dependencies are edges of `key` in each
/// configuration they reach (`covered` has them already).
struct AspectRequest {
    key: ConfiguredLabel,
    aspects: Vec<String>,
    starts: Vec<ConfiguredLabel>,
    covered: BTreeSet<Config>,
}

impl ConfiguredGraph {
    /// `top_aspects` are `--aspects`: their attributes' dependencies become the requested
    /// targets' dependencies.
    pub fn build(
        graph: &TargetGraph,
        roots: &BTreeSet<Label>,
        top: &Config,
        platforms: &PlatformConfig,
        top_aspects: &[String],
    ) -> ConfiguredGraph {
        let mut b = Builder {
            graph,
            platforms,
            platform_of: HashMap::new(),
            settings: HashMap::new(),
            rules: HashMap::new(),
            incoming: HashMap::new(),
            aspect_tools: HashMap::new(),
            aspect_requests: Vec::new(),
        };
        let mut nodes: HashMap<ConfiguredLabel, Node> = HashMap::new();
        let mut root_keys = Vec::new();
        let mut errors = Vec::new();
        let mut stack: Vec<ConfiguredLabel> = Vec::new();
        for label in roots {
            let Some(target) = graph.target(label) else {
                continue;
            };
            let rule_label = match &target.kind {
                TargetKind::Rule(_) => label.clone(),
                TargetKind::GeneratedFile { generating_rule } => generating_rule.clone(),
                _ => {
                    root_keys.push((
                        label.clone(),
                        ConfiguredLabel {
                            label: label.clone(),
                            config: top.clone(),
                        },
                    ));
                    continue;
                }
            };
            let config = match b.incoming(&rule_label, top) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let key = ConfiguredLabel {
                label: rule_label,
                config,
            };
            root_keys.push((label.clone(), key.clone()));
            stack.push(key);
        }
        let top_keys: BTreeSet<ConfiguredLabel> =
            root_keys.iter().map(|(_, k)| k.clone()).collect();
        loop {
            while let Some(key) = stack.pop() {
                if nodes.contains_key(&key) {
                    continue;
                }
                let mut node = b.node(&key);
                if top_keys.contains(&key) && !top_aspects.is_empty() {
                    b.aspect_tool_edges(top_aspects, &key.config, &mut node);
                    b.request_aspects(&key, top_aspects, vec![key.clone()], [&key.config]);
                }
                for dep in &node.deps {
                    if let Some(r) = &dep.rule
                        && !nodes.contains_key(r)
                    {
                        stack.push(r.clone());
                    }
                }
                nodes.insert(key, node);
            }
            // An aspect propagating across a transition needs its dependencies in the
            // configurations it reaches too: they are added, and the targets they bring in
            // are configured, until nothing new comes.
            let requests = std::mem::take(&mut b.aspect_requests);
            if requests.is_empty() {
                break;
            }
            let mut reached = HashMap::new();
            for request in requests {
                let attrs = super::aspects::propagation_attrs(graph, &request.aspects);
                let mut configs = BTreeSet::new();
                for start in &request.starts {
                    let r = configs_reached(graph, &nodes, start, &attrs, &mut reached);
                    configs.extend(r.iter().cloned());
                }
                let Some(node) = nodes.get_mut(&request.key) else {
                    continue;
                };
                let first_new = node.deps.len();
                for config in configs.difference(&request.covered) {
                    b.aspect_tool_edges(&request.aspects, config, node);
                }
                // Those not configured yet are, in the next round.
                stack.extend(node.deps[first_new..].iter().filter_map(|d| d.rule.clone()));
            }
        }
        ConfiguredGraph {
            nodes,
            roots: root_keys,
            errors,
        }
    }
}

/// The configurations an aspect propagating along `attrs` (`"*"`: all) reaches from `key`,
/// `key`'s own included; `memo` keeps each target's answer.
fn configs_reached(
    graph: &TargetGraph,
    nodes: &HashMap<ConfiguredLabel, Node>,
    key: &ConfiguredLabel,
    attrs: &[String],
    memo: &mut HashMap<(ConfiguredLabel, Vec<String>), Arc<BTreeSet<Config>>>,
) -> Arc<BTreeSet<Config>> {
    let memo_key = (key.clone(), attrs.to_vec());
    if let Some(done) = memo.get(&memo_key) {
        return done.clone();
    }
    let mut configs = BTreeSet::from([key.config.clone()]);
    for edge in nodes
        .get(key)
        .map(|n| n.deps.as_slice())
        .unwrap_or_default()
    {
        let along = !edge.attr.starts_with('$')
            && attrs.iter().any(|a| a == "*" || *a == edge.attr)
            && graph
                .target(&edge.label)
                .is_some_and(|t| t.rule().is_some());
        if let Some(dep) = edge.rule.as_ref().filter(|_| along) {
            configs.extend(
                configs_reached(graph, nodes, dep, attrs, memo)
                    .iter()
                    .cloned(),
            );
        }
    }
    let configs = Arc::new(configs);
    memo.insert(memo_key, configs.clone());
    configs
}

impl<'g> Builder<'g> {
    /// Notes that `key` applies `aspects` to `starts`, if the aspects have dependencies of
    /// their own: `covered` are the configurations their edges are already in.
    fn request_aspects<'c>(
        &mut self,
        key: &ConfiguredLabel,
        aspects: &[String],
        starts: Vec<ConfiguredLabel>,
        covered: impl IntoIterator<Item = &'c Config>,
    ) {
        let graph = self.graph;
        let tools = self
            .aspect_tools
            .entry(aspects.to_vec())
            .or_insert_with(|| Arc::new(super::aspects::tool_labels(graph, aspects)));
        if tools.is_empty() || starts.is_empty() {
            return;
        }
        self.aspect_requests.push(AspectRequest {
            key: key.clone(),
            aspects: aspects.to_vec(),
            starts,
            covered: covered.into_iter().cloned().collect(),
        });
    }

    /// Adds to `node` an edge to each dependency the private attributes of `aspects` name,
    /// for the aspects applied to dependencies in `config`: the aspects' implementations
    /// read them when the node is analysed.
    fn aspect_tool_edges(&mut self, aspects: &[String], config: &Config, node: &mut Node) {
        let graph = self.graph;
        let tools = self
            .aspect_tools
            .entry(aspects.to_vec())
            .or_insert_with(|| Arc::new(super::aspects::tool_labels(graph, aspects)))
            .clone();
        for (label, cfg) in tools.iter() {
            let (config, transition) = match cfg.as_deref() {
                Some("exec") => (config.exec(), "ExecutionTransition"),
                Some("host") => (config.host(), "HostTransition"),
                _ => (config.clone(), "NoTransition"),
            };
            let rule = match graph.target(label).map(|t| &t.kind) {
                Some(TargetKind::Rule(_)) => Some(label.clone()),
                Some(TargetKind::GeneratedFile { generating_rule }) => {
                    Some(generating_rule.clone())
                }
                _ => None,
            };
            node.deps.push(DepEdge {
                attr: "$aspects".to_owned(),
                label: label.clone(),
                split_key: String::new(),
                config: config.clone(),
                transition: transition.to_owned(),
                rule: rule.map(|r| ConfiguredLabel { label: r, config }),
            });
        }
    }

    /// Resolves the toolchains `key` asks for on its configuration's platform, and adds an
    /// edge to each implementation chosen.
    fn toolchains(&mut self, key: &ConfiguredLabel, rule: &RuleTarget, node: &mut Node) {
        let Some(decl) = self.transitions(rule).map(|t| t.frozen().decl.clone()) else {
            return;
        };
        let platform = self.platform(&key.config);
        let Some(resolved) =
            toolchains::resolve_for_target(self.graph, &decl, rule, &platform, self.platforms)
        else {
            return;
        };
        if let Ok(r) = &resolved {
            for implementation in r.implementations() {
                let rule_label = match self.graph.target(implementation).map(|t| &t.kind) {
                    Some(TargetKind::Rule(_)) => implementation.clone(),
                    _ => continue,
                };
                node.deps.push(DepEdge {
                    attr: "$toolchains".to_owned(),
                    label: implementation.clone(),
                    split_key: String::new(),
                    config: key.config.clone(),
                    transition: "NoTransition".to_owned(),
                    rule: Some(ConfiguredLabel {
                        label: rule_label,
                        config: key.config.clone(),
                    }),
                });
            }
        }
        node.toolchains = Some(Arc::new(resolved));
    }

    fn platform(&mut self, config: &Config) -> Arc<Platform> {
        let platforms = self.platforms;
        self.platform_of
            .entry(config.options().kind)
            .or_insert_with(|| Arc::new(platforms.platform_for(config.options().kind)))
            .clone()
    }

    fn settings(&mut self, config: &Config) -> Arc<Settings> {
        let graph = self.graph;
        self.settings
            .entry(config.clone())
            .or_insert_with(|| {
                let platform = self.platforms.platform_for(config.options().kind);
                Arc::new(Settings::new(graph, config, &platform))
            })
            .clone()
    }

    fn transitions(&mut self, rule: &RuleTarget) -> Option<Arc<RuleTransitions>> {
        let loader = self.graph.loader();
        self.rules
            .entry((rule.defined_in.clone(), rule.class.clone()))
            .or_insert_with(|| {
                let callable = loader.rule_callable(&rule.defined_in, &rule.class).ok()?;
                callable.value().downcast_ref::<FrozenRuleCallable>()?;
                Some(Arc::new(RuleTransitions { callable }))
            })
            .clone()
    }

    /// `rule`'s attributes resolved in `config`; none when it has no select() to resolve.
    fn resolve(
        &mut self,
        label: &Label,
        config: &Config,
    ) -> Result<Option<Arc<RuleTarget>>, Diagnostic> {
        let target = self
            .graph
            .target(label)
            .expect("configured targets are loaded");
        let rule = target.rule().expect("configured targets are rules");
        let settings = self.settings(config);
        settings
            .resolve(self.graph, target, rule)
            .map(|r| match r {
                std::borrow::Cow::Borrowed(_) => None,
                std::borrow::Cow::Owned(r) => Some(Arc::new(r)),
            })
            .map_err(|e| {
                Diagnostic::at(
                    &target.location,
                    format!("in {} {}: {e}", target.kind_name(), target.label),
                )
            })
    }

    /// The configuration the rule target `label` is analysed in when an edge brings it in
    /// `config`: its rule's incoming transition applied, if it has one.
    fn incoming(&mut self, label: &Label, config: &Config) -> Result<Config, Diagnostic> {
        let key = (label.clone(), config.clone());
        if let Some(done) = self.incoming.get(&key) {
            return done.clone();
        }
        let result = self.compute_incoming(label, config);
        self.incoming.insert(key, result.clone());
        result
    }

    fn compute_incoming(&mut self, label: &Label, config: &Config) -> Result<Config, Diagnostic> {
        let Some(target) = self.graph.target(label) else {
            return Ok(config.clone());
        };
        let Some(rule) = target.rule() else {
            return Ok(config.clone());
        };
        let Some(rt) = self.transitions(rule).filter(|t| t.has_transitions()) else {
            return Ok(config.clone());
        };
        let Some(incoming) = rt.frozen().incoming else {
            return Ok(config.clone());
        };
        let resolved = self.resolve(label, config)?;
        let resolved = resolved.as_deref().unwrap_or(rule);
        let error = |message: String| {
            Diagnostic::at(
                &target.location,
                format!("in {} {}: {message}", target.kind_name(), target.label),
            )
        };
        let mut result = transitions::apply(self.graph, incoming, config, resolved, label)
            .map_err(|e| error(e.to_string()))?;
        if result.len() != 1 {
            return Err(error(
                "a rule's incoming transition (rule(cfg = ...)) must not split the configuration"
                    .to_owned(),
            ));
        }
        Ok(result.remove(0).1)
    }

    fn node(&mut self, key: &ConfiguredLabel) -> Node {
        let mut node = Node {
            rule: self.resolve(&key.label, &key.config),
            deps: Vec::new(),
            split_attrs: BTreeSet::new(),
            toolchains: None,
            platform: self.platform(&key.config),
            applies_aspects: false,
        };
        let Ok(resolved) = node.rule.clone() else {
            return node;
        };
        let graph = self.graph;
        let loaded = graph
            .target(&key.label)
            .and_then(|t| t.rule())
            .expect("configured targets are rules");
        let rule = resolved.as_deref().unwrap_or(loaded);
        if let Err(e) = self.edges(key, rule, &mut node) {
            node.rule = Err(e);
        }
        self.toolchains(key, rule, &mut node);
        node
    }

    fn edges(
        &mut self,
        key: &ConfiguredLabel,
        rule: &RuleTarget,
        node: &mut Node,
    ) -> Result<(), Diagnostic> {
        let graph = self.graph;
        let target = graph.target(&key.label).expect("loaded");
        let transitions = self.transitions(rule);
        let decl = transitions.as_ref().map(|t| t.frozen().decl.clone());
        let error = |message: String| {
            Diagnostic::at(
                &target.location,
                format!("in {} {}: {message}", target.kind_name(), target.label),
            )
        };
        for (name, value) in &rule.attrs {
            if name == "visibility" {
                continue;
            }
            let labels = value.dep_labels();
            if labels.is_empty() {
                continue;
            }
            let cfg = decl
                .as_ref()
                .and_then(|d| d.attrs.iter().find(|(n, _)| n == name))
                .and_then(|(_, s)| s.cfg.clone());
            let mut transition = "NoTransition";
            let configs: Vec<(String, Config)> = match cfg.as_deref() {
                Some("exec") => {
                    transition = "ExecutionTransition";
                    vec![(String::new(), key.config.exec())]
                }
                Some("host") => {
                    transition = "HostTransition";
                    vec![(String::new(), key.config.host())]
                }
                Some(crate::loading::TRANSITION_CFG) => {
                    let t = transitions
                        .as_ref()
                        .and_then(|t| {
                            t.frozen()
                                .attr_transitions
                                .iter()
                                .find(|(n, _)| n == name)
                                .map(|(_, v)| *v)
                        })
                        .expect("an attribute with a transition keeps it");
                    let result = transitions::apply(graph, t, &key.config, rule, &key.label)
                        .map_err(|e| error(format!("attribute '{name}': {e}")))?;
                    transition = match crate::loading::Transition::from_value(t.to_value()) {
                        Some(t) if t.decl.made_by != "transition" => "AnalysisTestTransition",
                        _ => "StarlarkTransition",
                    };
                    node.split_attrs.insert(name.to_owned());
                    if result.iter().any(|(key, _)| !key.is_empty()) {
                        transition = "SplitTransition";
                    }
                    result
                }
                _ => vec![(String::new(), key.config.clone())],
            };
            // Output attributes name the target's own files, not dependencies.
            if matches!(value, AttrValue::Output(_) | AttrValue::OutputList(_)) {
                continue;
            }
            let aspects = decl
                .as_ref()
                .and_then(|d| d.attrs.iter().find(|(n, _)| n == name))
                .map(|(_, s)| s.aspects.clone())
                .unwrap_or_default();
            if !aspects.is_empty() {
                node.applies_aspects = true;
                for (_, config) in &configs {
                    self.aspect_tool_edges(&aspects, config, node);
                }
            }
            let first_edge = node.deps.len();
            for (split_key, config) in &configs {
                for label in &labels {
                    let rule_label = match graph.target(label).map(|t| &t.kind) {
                        Some(TargetKind::Rule(_)) => Some((*label).clone()),
                        Some(TargetKind::GeneratedFile { generating_rule }) => {
                            Some(generating_rule.clone())
                        }
                        _ => None,
                    };
                    let mut edge_transition = transition.to_owned();
                    let (config, rule) = match rule_label {
                        Some(r) => {
                            let c = self.incoming(&r, config)?;
                            if c != *config {
                                edge_transition.push_str(" + incoming StarlarkTransition");
                            }
                            (
                                c.clone(),
                                Some(ConfiguredLabel {
                                    label: r,
                                    config: c,
                                }),
                            )
                        }
                        None => (config.clone(), None),
                    };
                    node.deps.push(DepEdge {
                        attr: name.to_owned(),
                        label: (*label).clone(),
                        split_key: split_key.clone(),
                        config,
                        transition: edge_transition,
                        rule,
                    });
                }
            }
            if !aspects.is_empty() {
                // Aspects apply to the rule targets among the dependencies.
                let starts: Vec<ConfiguredLabel> = node.deps[first_edge..]
                    .iter()
                    .filter(|e| graph.target(&e.label).is_some_and(|t| t.rule().is_some()))
                    .filter_map(|e| e.rule.clone())
                    .collect();
                self.request_aspects(key, &aspects, starts, configs.iter().map(|(_, c)| c));
            }
        }
        // The conditions of the target's select()s are dependencies in its configuration,
        // as in Bazel (cquery lists them).
        let unresolved = target.rule().expect("configured targets are rules");
        for (name, value) in &unresolved.attrs {
            let AttrValue::Select(select) = value else {
                continue;
            };
            for part in &select.parts {
                let crate::loading::SelectPart::Selector(selector) = part else {
                    continue;
                };
                for (condition, _) in &selector.conditions {
                    if crate::loading::is_default_condition(condition)
                        || graph.target(condition).is_none_or(|t| t.rule().is_none())
                    {
                        continue;
                    }
                    node.deps.push(DepEdge {
                        attr: name.to_owned(),
                        label: condition.clone(),
                        split_key: String::new(),
                        config: key.config.clone(),
                        transition: "NoTransition".to_owned(),
                        rule: Some(ConfiguredLabel {
                            label: condition.clone(),
                            config: key.config.clone(),
                        }),
                    });
                }
            }
        }
        // A label_flag the configuration sets has the chosen target as its
        // build_setting_default (`Settings::resolve`), so the loop above made its edge.
        Ok(())
    }
}
