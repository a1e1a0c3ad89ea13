//! Microsoft365DSC configurations: `Configuration … { Node … { <Resource>
//! "<title>" { Key = value … } } }` in PowerShell. Each resource that is a
//! filter, group or policy becomes its Graph record; the rest are passed
//! over with a note that says why.
//!
//! Values: strings, numbers, `$true`/`$false`/`$null`, `@(…)` lists,
//! `@{…}` tables and `MSFT_…{…}` CIM instances. Variables (`$TenantId`,
//! `$ConfigurationData…`) and strings that expand them are only known when
//! the configuration runs, so those properties are left out.

use super::powershell::{SyntaxError, Tok, Token, tokens};
use super::{Read, Record, camel_case, placeholder_id};
use crate::ImportError;
use serde_json::{Map, Number, Value, json};
use std::path::Path;

/// A value as the configuration writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Dsc {
    Str(String),
    Num(Number),
    Bool(bool),
    Null,
    /// Known only when the configuration runs: a variable, or a string
    /// that expands one.
    Unknown(String),
    List(Vec<Dsc>),
    Table(Vec<(String, Dsc)>),
    Cim {
        class: String,
        props: Vec<(String, Dsc)>,
    },
}

/// One resource block.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: String,
    pub title: String,
    pub line: usize,
    pub props: Vec<(String, Dsc)>,
}

/// What a resource becomes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Filter,
    Group,
    /// A device configuration, compliance policy or update ring: its Graph type.
    Legacy(&'static str),
    /// ADMX definition values: a `groupPolicyConfiguration`.
    Admx,
    /// A settings-catalog policy whose `Settings` mirror Graph's instances.
    Catalog,
    /// Passed over, with the reason.
    Skip(&'static str),
}

const BY_NAME: &str = "its settings are Microsoft365DSC properties named after settings-catalog settings, which ringmaster cannot map to setting definition ids";
const NO_SCHEMA: &str = "the Graph type of Windows feature, quality and driver update profiles is not in the Intune schema ringmaster maps against";

/// Resource name → Graph record. Every `Legacy` type is a type of the Graph
/// beta schema (a test checks this against shared/graph).
#[rustfmt::skip]
const RESOURCES: &[(&str, Target)] = {
    use Target::*;
    &[
        ("AADGroup", Group),
        ("IntuneDeviceAndAppManagementAssignmentFilter", Filter),
        ("IntuneDeviceConfigurationAdministrativeTemplatePolicyWindows10", Admx),
        ("IntuneSettingCatalogCustomPolicyWindows10", Catalog),
        // Device configuration profiles.
        ("IntuneDeviceConfigurationPolicyWindows10", Legacy("windows10GeneralConfiguration")),
        ("IntuneDeviceConfigurationEndpointProtectionPolicyWindows10", Legacy("windows10EndpointProtectionConfiguration")),
        ("IntuneDeviceConfigurationCustomPolicyWindows10", Legacy("windows10CustomConfiguration")),
        ("IntuneDeviceConfigurationDefenderForEndpointOnboardingPolicyWindows10", Legacy("windowsDefenderAdvancedThreatProtectionConfiguration")),
        ("IntuneDeviceConfigurationDeliveryOptimizationPolicyWindows10", Legacy("windowsDeliveryOptimizationConfiguration")),
        ("IntuneDeviceConfigurationDomainJoinPolicyWindows10", Legacy("windowsDomainJoinConfiguration")),
        ("IntuneDeviceConfigurationEmailProfilePolicyWindows10", Legacy("windows10EasEmailProfileConfiguration")),
        ("IntuneDeviceConfigurationFirmwareInterfacePolicyWindows10", Legacy("windows10DeviceFirmwareConfigurationInterface")),
        ("IntuneDeviceConfigurationHealthMonitoringConfigurationPolicyWindows10", Legacy("windowsHealthMonitoringConfiguration")),
        ("IntuneDeviceConfigurationIdentityProtectionPolicyWindows10", Legacy("windowsIdentityProtectionConfiguration")),
        ("IntuneDeviceConfigurationImportedPfxCertificatePolicyWindows10", Legacy("windows10ImportedPFXCertificateProfile")),
        ("IntuneDeviceConfigurationKioskPolicyWindows10", Legacy("windowsKioskConfiguration")),
        ("IntuneDeviceConfigurationNetworkBoundaryPolicyWindows10", Legacy("windows10NetworkBoundaryConfiguration")),
        ("IntuneDeviceConfigurationPkcsCertificatePolicyWindows10", Legacy("windows10PkcsCertificateProfile")),
        ("IntuneDeviceConfigurationSCEPCertificatePolicyWindows10", Legacy("windows81SCEPCertificateProfile")),
        ("IntuneDeviceConfigurationSecureAssessmentPolicyWindows10", Legacy("windows10SecureAssessmentConfiguration")),
        ("IntuneDeviceConfigurationSharedMultiDevicePolicyWindows10", Legacy("sharedPCConfiguration")),
        ("IntuneDeviceConfigurationTrustedCertificatePolicyWindows10", Legacy("windows81TrustedRootCertificate")),
        ("IntuneDeviceConfigurationVpnPolicyWindows10", Legacy("windows10VpnConfiguration")),
        ("IntuneDeviceConfigurationWindowsTeamPolicyWindows10", Legacy("windows10TeamGeneralConfiguration")),
        ("IntuneDeviceConfigurationWiredNetworkPolicyWindows10", Legacy("windowsWiredNetworkConfiguration")),
        ("IntuneDeviceConfigurationPolicyAndroidDeviceAdministrator", Legacy("androidGeneralDeviceConfiguration")),
        ("IntuneDeviceConfigurationPolicyAndroidDeviceOwner", Legacy("androidDeviceOwnerGeneralDeviceConfiguration")),
        ("IntuneDeviceConfigurationPolicyAndroidOpenSourceProject", Legacy("aospDeviceOwnerDeviceConfiguration")),
        ("IntuneDeviceConfigurationPolicyAndroidWorkProfile", Legacy("androidWorkProfileGeneralDeviceConfiguration")),
        ("IntuneDeviceConfigurationPolicyMacOS", Legacy("macOSGeneralDeviceConfiguration")),
        ("IntuneDeviceConfigurationPolicyiOS", Legacy("iosGeneralDeviceConfiguration")),
        ("IntuneWiFiConfigurationPolicyAndroidDeviceAdministrator", Legacy("androidWiFiConfiguration")),
        ("IntuneWifiConfigurationPolicyAndroidEnterpriseDeviceOwner", Legacy("androidDeviceOwnerWiFiConfiguration")),
        ("IntuneWifiConfigurationPolicyAndroidEnterpriseWorkProfile", Legacy("androidWorkProfileWiFiConfiguration")),
        ("IntuneWifiConfigurationPolicyAndroidForWork", Legacy("androidForWorkWiFiConfiguration")),
        ("IntuneWifiConfigurationPolicyAndroidOpenSourceProject", Legacy("aospDeviceOwnerWiFiConfiguration")),
        ("IntuneWifiConfigurationPolicyIOS", Legacy("iosWiFiConfiguration")),
        ("IntuneWifiConfigurationPolicyMacOS", Legacy("macOSWiFiConfiguration")),
        ("IntuneWifiConfigurationPolicyWindows10", Legacy("windowsWifiConfiguration")),
        // Compliance policies and update rings.
        ("IntuneDeviceCompliancePolicyAndroid", Legacy("androidCompliancePolicy")),
        ("IntuneDeviceCompliancePolicyAndroidDeviceOwner", Legacy("androidDeviceOwnerCompliancePolicy")),
        ("IntuneDeviceCompliancePolicyAndroidWorkProfile", Legacy("androidWorkProfileCompliancePolicy")),
        ("IntuneDeviceCompliancePolicyMacOS", Legacy("macOSCompliancePolicy")),
        ("IntuneDeviceCompliancePolicyWindows10", Legacy("windows10CompliancePolicy")),
        ("IntuneDeviceCompliancePolicyiOs", Legacy("iosCompliancePolicy")),
        ("IntuneWindowsUpdateForBusinessRingUpdateProfileWindows10", Legacy("windowsUpdateForBusinessConfiguration")),
        ("IntuneWindowsUpdateForBusinessFeatureUpdateProfileWindows10", Skip(NO_SCHEMA)),
        ("IntuneWindowsUpdateForBusinessQualityUpdateProfileWindows10", Skip(NO_SCHEMA)),
        ("IntuneWindowsUpdateForBusinessDriverUpdateProfileWindows10", Skip(NO_SCHEMA)),
        // Settings-catalog policies under Microsoft365DSC's own property names.
        ("IntuneASRRulesPolicyWindows10", Skip(BY_NAME)),
        ("IntuneAccountProtectionLocalAdministratorPasswordSolutionPolicy", Skip(BY_NAME)),
        ("IntuneAccountProtectionLocalUserGroupMembershipPolicy", Skip(BY_NAME)),
        ("IntuneAccountProtectionPolicy", Skip(BY_NAME)),
        ("IntuneAccountProtectionPolicyWindows10", Skip(BY_NAME)),
        ("IntuneAntivirusPolicyWindows10SettingCatalog", Skip(BY_NAME)),
        ("IntuneAppAndBrowserIsolationPolicyWindows10", Skip(BY_NAME)),
        ("IntuneApplicationControlPolicyWindows10", Skip(BY_NAME)),
        ("IntuneAttackSurfaceReductionRulesPolicyWindows10ConfigManager", Skip(BY_NAME)),
        ("IntuneDeviceControlPolicyWindows10", Skip(BY_NAME)),
        ("IntuneDiskEncryptionMacOS", Skip(BY_NAME)),
        ("IntuneDiskEncryptionWindows10", Skip(BY_NAME)),
        ("IntuneEndpointDetectionAndResponsePolicyLinux", Skip(BY_NAME)),
        ("IntuneEndpointDetectionAndResponsePolicyMacOS", Skip(BY_NAME)),
        ("IntuneEndpointDetectionAndResponsePolicyWindows10", Skip(BY_NAME)),
        ("IntuneExploitProtectionPolicyWindows10SettingCatalog", Skip(BY_NAME)),
        ("IntuneFirewallPolicyWindows10", Skip(BY_NAME)),
        ("IntuneSecurityBaselineMicrosoft365AppsForEnterprise", Skip(BY_NAME)),
        ("IntuneSecurityBaselineMicrosoftEdge", Skip(BY_NAME)),
        ("IntuneSettingCatalogASRRulesPolicyWindows10", Skip(BY_NAME)),
        // Objects ringmaster does not model.
        ("IntuneAppCategory", Skip("app categories are not modelled")),
        ("IntuneDeviceCategory", Skip("device categories are not modelled")),
        ("IntuneAppConfigurationDevicePolicy", Skip("app configuration policies are not modelled")),
        ("IntuneAppConfigurationPolicy", Skip("app configuration policies are not modelled")),
        ("IntuneAppProtectionPolicyAndroid", Skip("app protection policies are not modelled")),
        ("IntuneAppProtectionPolicyiOS", Skip("app protection policies are not modelled")),
        ("IntuneWindowsInformationProtectionPolicyWindows10MdmEnrolled", Skip("Windows Information Protection policies are not modelled")),
        ("IntuneDerivedCredential", Skip("derived credentials are not modelled")),
        ("IntuneDeviceCleanupRule", Skip("device cleanup rules are not modelled")),
        ("IntuneDeviceManagementComplianceSettings", Skip("tenant-wide compliance settings are not modelled")),
        ("IntuneDeviceEnrollmentLimitRestriction", Skip("enrollment profiles are not modelled")),
        ("IntuneDeviceEnrollmentPlatformRestriction", Skip("enrollment profiles are not modelled")),
        ("IntuneDeviceEnrollmentStatusPageWindows10", Skip("enrollment profiles are not modelled")),
        ("IntuneWindowsAutopilotDeploymentProfileAzureADHybridJoined", Skip("enrollment profiles are not modelled")),
        ("IntuneWindowsAutopilotDeploymentProfileAzureADJoined", Skip("enrollment profiles are not modelled")),
        ("IntuneDeviceConfigurationPlatformScriptMacOS", Skip("scripts are not modelled")),
        ("IntuneDeviceConfigurationPlatformScriptWindows", Skip("scripts are not modelled")),
        ("IntuneDeviceRemediation", Skip("scripts are not modelled")),
        ("IntuneMobileAppsMacOSLobApp", Skip("apps are not modelled")),
        ("IntuneMobileAppsWindowsOfficeSuiteApp", Skip("apps are not modelled")),
        ("IntunePolicySets", Skip("policy sets are not modelled")),
        ("IntuneRoleAssignment", Skip("Intune roles are not modelled")),
        ("IntuneRoleDefinition", Skip("Intune roles are not modelled")),
    ]
};

/// Properties that tell DSC how to connect or what to do, not what to set.
const DSC_ONLY: &[&str] = &[
    "Ensure",
    "Credential",
    "ApplicationId",
    "TenantId",
    "CertificateThumbprint",
    "CertificatePath",
    "CertificatePassword",
    "ApplicationSecret",
    "ManagedIdentity",
    "AccessTokens",
    "PsDscRunAsCredential",
    "DependsOn",
];

/// Group properties that name other objects by name or UPN, not by id.
const GROUP_REFS: &[&str] = &[
    "Members",
    "GroupAsMembers",
    "Owners",
    "MemberOf",
    "AssignedToRole",
    "AssignedLicenses",
];

/// The line where a `Configuration` block starts: its first word is
/// `Configuration`, then a name. `<# … #>` comments are not looked in.
fn start(text: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    let mut in_comment = false;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let at = offset;
        offset += line.len();
        let t = line.trim();
        if in_comment {
            in_comment = !t.contains("#>");
            continue;
        }
        if t.starts_with("<#") {
            in_comment = !t.contains("#>");
            continue;
        }
        let mut words = t.split_whitespace();
        let first = words.next().unwrap_or("");
        let name = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        if first.eq_ignore_ascii_case("configuration")
            && !name.is_empty()
            && !name.starts_with(['{', '-', '$', '#'])
            && (rest.is_empty() || rest[0].starts_with('{') || rest[0].starts_with('#'))
        {
            return Some((at, n + 1));
        }
    }
    None
}

/// Whether a script holds a DSC `Configuration` block.
pub fn is_configuration(text: &str) -> bool {
    start(text).is_some()
}

/// Reads a configuration's resources as Graph records.
pub fn read(p: &Path, text: &str) -> Result<Read, ImportError> {
    let resources = parse(text).map_err(|e| ImportError {
        file: p.to_path_buf(),
        record: None,
        line: Some(e.line),
        column: None,
        field: None,
        message: format!("{} (column {})", e.message, e.col),
    })?;
    let mut out = Read::default();
    for r in resources {
        let at = format!("{} '{}' (line {})", r.kind, r.title, r.line);
        match record(&r) {
            Ok((value, notes)) => {
                out.skipped
                    .extend(notes.into_iter().map(|n| format!("{at}: {n}")));
                out.records.push(Record {
                    value,
                    line: Some(r.line),
                });
            }
            Err(why) => out.skipped.push(format!("{at}: {why}")),
        }
    }
    Ok(out)
}

/// The resource blocks of every `Configuration` in the text.
pub fn parse(text: &str) -> Result<Vec<Resource>, SyntaxError> {
    let Some((offset, line)) = start(text) else {
        return Ok(Vec::new());
    };
    let toks = tokens(&text[offset..], line)?;
    let mut p = Parser { toks, i: 0 };
    let mut out = Vec::new();
    while p.i < p.toks.len() {
        let at_start = p.i == 0 || p.toks[p.i - 1].tok == Tok::Newline;
        match &p.toks[p.i].tok {
            Tok::Word(w) if at_start && w.eq_ignore_ascii_case("configuration") => {
                let open = p.i;
                p.i += 1;
                match p.next().map(|t| t.tok) {
                    Some(Tok::Word(_)) => {}
                    _ => return Err(p.err_at(open, "`Configuration` needs a name")),
                }
                p.skip_newlines();
                p.expect('{', "`{` after the configuration's name")?;
                p.block(p.i - 1, &mut out)?;
            }
            _ => p.i += 1,
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }

    fn skip_newlines(&mut self) {
        while self.peek() == Some(&Tok::Newline) {
            self.i += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(Tok::Newline | Tok::Punct(';'))) {
            self.i += 1;
        }
    }

    fn err_at(&self, i: usize, message: impl Into<String>) -> SyntaxError {
        let t = self.toks.get(i).or(self.toks.last());
        SyntaxError {
            line: t.map_or(1, |t| t.line),
            col: t.map_or(1, |t| t.col),
            message: message.into(),
        }
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), SyntaxError> {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err_at(self.i, format!("expected {what}")))
        }
    }

    /// Skips a bracketed run starting at an opener.
    fn skip_balanced(&mut self) -> Result<(), SyntaxError> {
        let open = self.i;
        let mut depth = 0usize;
        while let Some(t) = self.next() {
            match t.tok {
                Tok::Punct('(' | '{' | '[') | Tok::AtParen | Tok::AtBrace => depth += 1,
                Tok::Punct(')' | '}' | ']') => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        Err(self.err_at(open, "this bracket is never closed"))
    }

    /// Skips to the end of a statement (a new line or `;` outside brackets).
    fn skip_statement(&mut self) -> Result<(), SyntaxError> {
        while let Some(t) = self.peek() {
            match t {
                Tok::Newline | Tok::Punct(';' | '}') => return Ok(()),
                Tok::Punct('(' | '{' | '[') | Tok::AtParen | Tok::AtBrace => {
                    self.skip_balanced()?
                }
                _ => self.i += 1,
            }
        }
        Ok(())
    }

    /// Statements up to the `}` that closes the block opened at `open`.
    fn block(&mut self, open: usize, out: &mut Vec<Resource>) -> Result<(), SyntaxError> {
        loop {
            self.skip_separators();
            let Some(tok) = self.peek().cloned() else {
                return Err(self.err_at(open, "this `{` is never closed"));
            };
            match tok {
                Tok::Punct('}') => {
                    self.i += 1;
                    return Ok(());
                }
                Tok::Punct('[') => self.skip_balanced()?,
                Tok::Word(w) if w.eq_ignore_ascii_case("param") => {
                    self.i += 1;
                    self.skip_newlines();
                    if self.peek() == Some(&Tok::Punct('(')) {
                        self.skip_balanced()?;
                    }
                }
                Tok::Word(w) if w.eq_ignore_ascii_case("node") => {
                    let node = self.i;
                    self.i += 1;
                    while !matches!(self.peek(), Some(Tok::Punct('{')) | None) {
                        match self.peek() {
                            Some(Tok::Punct('(' | '[') | Tok::AtParen | Tok::AtBrace) => {
                                self.skip_balanced()?
                            }
                            _ => self.i += 1,
                        }
                    }
                    if self.peek().is_none() {
                        return Err(self.err_at(node, "`Node` needs a `{` block"));
                    }
                    self.i += 1;
                    self.block(self.i - 1, out)?;
                }
                // Commands (`Import-DscResource`, `Write-Verbose`) and assignments.
                Tok::Word(w) if w.contains('-') => self.skip_statement()?,
                Tok::Word(kind) => out.push(self.resource(kind)?),
                _ => self.skip_statement()?,
            }
        }
    }

    fn resource(&mut self, kind: String) -> Result<Resource, SyntaxError> {
        let at = self.i;
        let line = self.toks[at].line;
        self.i += 1;
        let title = match self.next().map(|t| t.tok) {
            Some(Tok::Str { text, .. } | Tok::Word(text) | Tok::Var(text)) => text,
            Some(Tok::Num(n)) => n.to_string(),
            _ => return Err(self.err_at(at, format!("resource `{kind}` needs a title"))),
        };
        self.skip_newlines();
        self.expect('{', &format!("`{{` after the title of `{kind}`"))?;
        let props = self.entries(self.i - 1)?;
        Ok(Resource {
            kind,
            title,
            line,
            props,
        })
    }

    /// `Key = value` entries up to the `}` that closes the `{` at `open`.
    fn entries(&mut self, open: usize) -> Result<Vec<(String, Dsc)>, SyntaxError> {
        let mut out = Vec::new();
        loop {
            self.skip_separators();
            let at = self.i;
            let key = match self.next().map(|t| t.tok) {
                Some(Tok::Punct('}')) => return Ok(out),
                Some(Tok::Word(k) | Tok::Str { text: k, .. }) => k,
                None => return Err(self.err_at(open, "this `{` is never closed")),
                Some(_) => return Err(self.err_at(at, "expected a property name or `}`")),
            };
            self.expect('=', &format!("`=` after `{key}`"))?;
            let value = self.values()?;
            if !matches!(
                self.peek(),
                Some(Tok::Newline | Tok::Punct(';' | '}')) | None
            ) {
                return Err(self.err_at(
                    self.i,
                    format!("expected a new line, `;` or `}}` after the value of `{key}`"),
                ));
            }
            out.push((key, value));
        }
    }

    /// A value, or `a, b, c` (a list without `@( )`).
    fn values(&mut self) -> Result<Dsc, SyntaxError> {
        let first = self.value()?;
        if self.peek() != Some(&Tok::Punct(',')) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek() == Some(&Tok::Punct(',')) {
            self.i += 1;
            self.skip_newlines();
            items.push(self.value()?);
        }
        Ok(Dsc::List(items))
    }

    fn value(&mut self) -> Result<Dsc, SyntaxError> {
        self.skip_newlines();
        let at = self.i;
        let Some(t) = self.next() else {
            return Err(self.err_at(at, "expected a value"));
        };
        Ok(match t.tok {
            Tok::Str { text, vars: false } => Dsc::Str(text),
            Tok::Str { text, vars: true } => Dsc::Unknown(text),
            Tok::Num(n) => Dsc::Num(n),
            Tok::Var(v) => match v.to_ascii_lowercase().as_str() {
                "$true" => Dsc::Bool(true),
                "$false" => Dsc::Bool(false),
                "$null" => Dsc::Null,
                _ => Dsc::Unknown(v),
            },
            Tok::AtParen => {
                let mut items = Vec::new();
                loop {
                    while matches!(self.peek(), Some(Tok::Newline | Tok::Punct(',' | ';'))) {
                        self.i += 1;
                    }
                    match self.peek() {
                        Some(Tok::Punct(')')) => {
                            self.i += 1;
                            break Dsc::List(items);
                        }
                        None | Some(Tok::Punct('}' | ']')) => {
                            return Err(self.err_at(at, "this `@(` is never closed"));
                        }
                        _ => items.push(self.value()?),
                    }
                }
            }
            Tok::AtBrace => Dsc::Table(self.entries(at)?),
            Tok::Word(w) => {
                let mut j = self.i;
                while self.toks.get(j).map(|t| &t.tok) == Some(&Tok::Newline) {
                    j += 1;
                }
                if self.toks.get(j).map(|t| &t.tok) == Some(&Tok::Punct('{')) {
                    self.i = j + 1;
                    Dsc::Cim {
                        class: w,
                        props: self.entries(j)?,
                    }
                } else {
                    Dsc::Str(w)
                }
            }
            // A type cast, `[int]8`: the value is what follows.
            Tok::Punct('[') => {
                self.i = at;
                self.skip_balanced()?;
                self.value()?
            }
            Tok::Punct('(') => {
                self.i = at;
                self.skip_balanced()?;
                Dsc::Unknown("(…)".into())
            }
            _ => return Err(self.err_at(at, "expected a value")),
        })
    }
}

/// A resource's Graph record and notes on what was left out, or why the
/// whole resource is passed over.
fn record(r: &Resource) -> Result<(Value, Vec<String>), String> {
    let target = RESOURCES
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&r.kind))
        .map(|&(_, t)| t)
        .ok_or("a Microsoft365DSC resource ringmaster has no mapping for")?;
    if let Target::Skip(why) = target {
        return Err(why.to_string());
    }
    let ensure = r
        .props
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Ensure"));
    if let Some((_, Dsc::Str(e))) = ensure
        && e.eq_ignore_ascii_case("absent")
    {
        return Err("Ensure = 'Absent' removes it; it is not a policy".into());
    }
    let odata = match target {
        Target::Filter => "deviceAndAppManagementAssignmentFilter",
        Target::Group => "group",
        Target::Legacy(t) => t,
        Target::Admx => "groupPolicyConfiguration",
        Target::Catalog => "deviceManagementConfigurationPolicy",
        Target::Skip(_) => unreachable!("returned above"),
    };
    let mut notes = Vec::new();
    let mut rec = Map::new();
    rec.insert(
        "@odata.type".into(),
        json!(format!("#microsoft.graph.{odata}")),
    );
    for (k, v) in &r.props {
        if DSC_ONLY.iter().any(|d| d.eq_ignore_ascii_case(k)) {
            continue;
        }
        if target == Target::Group && GROUP_REFS.iter().any(|g| g.eq_ignore_ascii_case(k)) {
            if matches!(
                k.to_ascii_lowercase().as_str(),
                "members" | "groupasmembers"
            ) && !matches!(v, Dsc::List(l) if l.is_empty())
            {
                notes.push(format!(
                    "{k} name users by user principal name and groups by name; ringmaster matches members by object id, so they are not read"
                ));
            }
            continue;
        }
        if k.eq_ignore_ascii_case("Id") || k.eq_ignore_ascii_case("Identity") {
            if let Dsc::Str(id) = v
                && !placeholder_id(id)
            {
                rec.entry("id").or_insert_with(|| json!(id.trim()));
            }
            continue;
        }
        if k.eq_ignore_ascii_case("Assignments") {
            rec.insert("assignments".into(), assignments(v)?);
            continue;
        }
        if let Some(v) = to_json(v) {
            rec.insert(camel_case(k), v);
        }
    }
    if target == Target::Admx
        && let Some(Value::Array(values)) = rec.get_mut("definitionValues")
    {
        for pv in values
            .iter_mut()
            .filter_map(|d| d.get_mut("presentationValues"))
            .filter_map(Value::as_array_mut)
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            presentation(pv);
        }
    }
    Ok((Value::Object(rec), notes))
}

/// A DSC value as JSON: CIM instances and tables as objects with camelCase
/// keys; `None` for values only known when the configuration runs.
fn to_json(v: &Dsc) -> Option<Value> {
    Some(match v {
        Dsc::Str(s) => json!(s),
        Dsc::Num(n) => Value::Number(n.clone()),
        Dsc::Bool(b) => json!(b),
        Dsc::Null => Value::Null,
        Dsc::Unknown(_) => return None,
        Dsc::List(items) => Value::Array(items.iter().filter_map(to_json).collect()),
        Dsc::Table(props) | Dsc::Cim { props, .. } => {
            let mut o = Map::new();
            for (k, v) in props {
                let Some(v) = to_json(v) else { continue };
                o.insert(cim_key(k), v);
            }
            Value::Object(o)
        }
    })
}

/// Property names of Microsoft365DSC's CIM classes as Graph names them:
/// `odataType` is `@odata.type`; typed value fields are `value`/`values`.
fn cim_key(k: &str) -> String {
    match k.to_ascii_lowercase().as_str() {
        "odatatype" => "@odata.type".into(),
        "stringvalue" | "intvalue" | "integervalue" | "decimalvalue" | "booleanvalue" => {
            "value".into()
        }
        "stringvalues" | "keyvaluepairvalues" => "values".into(),
        _ => camel_case(k),
    }
}

/// `presentationDefinitionId`/`Label` as Graph's `presentation` object.
fn presentation(pv: &mut Map<String, Value>) {
    let id = pv.remove("presentationDefinitionId");
    let label = pv.remove("presentationDefinitionLabel");
    if id.is_some() || label.is_some() {
        let mut p = Map::new();
        if let Some(id) = id {
            p.insert("id".into(), id);
        }
        if let Some(label) = label {
            p.insert("label".into(), label);
        }
        pv.insert("presentation".into(), Value::Object(p));
    }
}

/// `Assignments = @(MSFT_…Assignments{ dataType = …; groupId = … })` as
/// Graph's `assignments[].target`.
fn assignments(v: &Dsc) -> Result<Value, String> {
    let items = match v {
        Dsc::List(items) => items.as_slice(),
        one @ Dsc::Cim { .. } => std::slice::from_ref(one),
        Dsc::Null => &[],
        _ => return Err("Assignments must be a list of assignment instances".into()),
    };
    let mut out = Vec::new();
    for item in items {
        let Dsc::Cim { props, .. } = item else {
            return Err("Assignments must be a list of assignment instances".into());
        };
        let mut target = Map::new();
        for (k, v) in props {
            let key = match k.to_ascii_lowercase().as_str() {
                "datatype" | "odatatype" => "@odata.type",
                "groupid" => "groupId",
                "deviceandappmanagementassignmentfiltertype" => {
                    "deviceAndAppManagementAssignmentFilterType"
                }
                "deviceandappmanagementassignmentfilterid" => {
                    "deviceAndAppManagementAssignmentFilterId"
                }
                // Names and ids Graph's target does not carry (groupDisplayName, collectionId…).
                _ => continue,
            };
            if let Some(v) = to_json(v) {
                target.insert(key.into(), v);
            }
        }
        out.push(json!({"target": target}));
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "<#\nConfiguration Example is an example\n#>\n\nConfiguration Example\n{\n    param(\n        [Parameter()]\n        [System.String]\n        $TenantId\n    )\n    Import-DscResource -ModuleName Microsoft365DSC\n    $Org = $ConfigurationData.NonNodeData.OrganizationName\n\n    node localhost\n    {\n";

    fn config(body: &str) -> String {
        format!("{HEAD}{body}\n    }}\n}}\nExample -ConfigurationData .\\ConfigurationData.psd1\n")
    }

    fn records(body: &str) -> Read {
        read(Path::new("x.ps1"), &config(body)).unwrap()
    }

    #[test]
    fn resources_become_graph_records() {
        let check = |body: &str, expect: Value| {
            let r = records(body);
            assert_eq!(r.skipped, Vec::<String>::new(), "{body}");
            assert_eq!(r.records.len(), 1);
            assert_eq!(r.records[0].line, Some(17));
            assert_eq!(r.records[0].value, expect, "{body}");
        };
        check(
            r#"        IntuneDeviceAndAppManagementAssignmentFilter 'AssignmentFilter'
        {
            DisplayName = 'Test Device Filter'
            Platform    = 'windows10AndLater'
            Rule        = "(device.manufacturer -ne `"Microsoft Corporation`")" # Updated Property
            Ensure      = 'Present'
            TenantId    = $TenantId;
        }"#,
            json!({"@odata.type": "#microsoft.graph.deviceAndAppManagementAssignmentFilter",
                "displayName": "Test Device Filter", "platform": "windows10AndLater",
                "rule": "(device.manufacturer -ne \"Microsoft Corporation\")"}),
        );
        check(
            r#"        AADGroup 'Sales'
        {
            DisplayName                   = "Sales devices"
            GroupTypes                    = "DynamicMembership", 'Unified'
            MembershipRule                = '(device.deviceOwnership -eq ''Company'')'
            MembershipRuleProcessingState = "On"
            SecurityEnabled               = $True
            Owners                        = @("admin@$TenantId")
        }"#,
            json!({"@odata.type": "#microsoft.graph.group", "displayName": "Sales devices",
                "groupTypes": ["DynamicMembership", "Unified"],
                "membershipRule": "(device.deviceOwnership -eq 'Company')",
                "membershipRuleProcessingState": "On", "securityEnabled": true}),
        );
        check(
            r#"        IntuneDeviceCompliancePolicyWindows10 97ed22e9-1429-40dc-ab3c-0055e538383b
        {
            Id                     = "00000000-0000-0000-0000-000000000000";
            DisplayName            = 'Windows 10 baseline';
            PasswordMinimumLength  = 8
            OsMaximumVersion       = 10.19
            TPMRequired            = $False
            ValidOperatingSystemBuildRanges = @()
            Assignments            = @(
                MSFT_DeviceManagementConfigurationPolicyAssignments
                {
                    deviceAndAppManagementAssignmentFilterType = 'include'
                    deviceAndAppManagementAssignmentFilterId   = 'f1'
                    dataType                                   = '#microsoft.graph.groupAssignmentTarget'
                    groupId                                    = 'g1'
                    groupDisplayName                           = 'Pilot'
                }
                MSFT_DeviceManagementConfigurationPolicyAssignments{
                    dataType = '#microsoft.graph.allLicensedUsersAssignmentTarget'
                }
            );
        }"#,
            json!({"@odata.type": "#microsoft.graph.windows10CompliancePolicy",
                "displayName": "Windows 10 baseline", "passwordMinimumLength": 8, "osMaximumVersion": 10.19,
                "tpmRequired": false, "validOperatingSystemBuildRanges": [],
                "assignments": [
                    {"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": "g1",
                        "deviceAndAppManagementAssignmentFilterType": "include",
                        "deviceAndAppManagementAssignmentFilterId": "f1"}},
                    {"target": {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"}}]}),
        );
        check(
            r#"        IntuneSettingCatalogCustomPolicyWindows10 'Example'
        {
            Id        = 'a409d85f-2a49-440d-884a-80fb52a557ab'
            Name      = "Setting Catalog Raw - DSC";
            Platforms = "windows10";
            Settings  = @(
                MSFT_MicrosoftGraphdeviceManagementConfigurationSetting{
                    SettingInstance = MSFT_MicrosoftGraphDeviceManagementConfigurationSettingInstance{
                        choiceSettingValue = MSFT_MicrosoftGraphDeviceManagementConfigurationChoiceSettingValue{
                            Value = 'abovelock_allowcortana_1'
                            Children = @(
                                MSFT_MicrosoftGraphDeviceManagementConfigurationSettingInstance{
                                    SettingDefinitionId = 'abovelock_allowcortana_level'
                                    simpleSettingValue = MSFT_MicrosoftGraphDeviceManagementConfigurationSimpleSettingValue{
                                        IntValue = 3
                                        odataType = '#microsoft.graph.deviceManagementConfigurationIntegerSettingValue'
                                    }
                                }
                            )
                        }
                        SettingDefinitionId = 'abovelock_allowcortana'
                        odataType = '#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance'
                    }
                }
            );
        }"#,
            json!({"@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy",
                "id": "a409d85f-2a49-440d-884a-80fb52a557ab", "name": "Setting Catalog Raw - DSC", "platforms": "windows10",
                "settings": [{"settingInstance": {
                    "choiceSettingValue": {"value": "abovelock_allowcortana_1", "children": [
                        {"settingDefinitionId": "abovelock_allowcortana_level", "simpleSettingValue": {
                            "value": 3, "@odata.type": "#microsoft.graph.deviceManagementConfigurationIntegerSettingValue"}}]},
                    "settingDefinitionId": "abovelock_allowcortana",
                    "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance"}}]}),
        );
        check(
            r#"        IntuneDeviceConfigurationAdministrativeTemplatePolicyWindows10 'Example'
        {
            DisplayName      = 'ADMX'
            DefinitionValues = @(
                MSFT_IntuneGroupPolicyDefinitionValue
                {
                    Definition = MSFT_IntuneGroupPolicyDefinitionValueDefinition
                    {
                        Id          = 'c4df'
                        DisplayName = 'Password Settings'
                    }
                    Enabled = $True
                    PresentationValues = @(
                        MSFT_IntuneGroupPolicyDefinitionValuePresentationValue
                        {
                            presentationDefinitionId    = 'a8a0'
                            presentationDefinitionLabel = 'Password Length'
                            DecimalValue                = 15
                            odataType                   = '#microsoft.graph.groupPolicyPresentationValueDecimal'
                        }
                    )
                }
            )
        }"#,
            json!({"@odata.type": "#microsoft.graph.groupPolicyConfiguration", "displayName": "ADMX",
                "definitionValues": [{"definition": {"id": "c4df", "displayName": "Password Settings"}, "enabled": true,
                    "presentationValues": [{"value": 15,
                        "@odata.type": "#microsoft.graph.groupPolicyPresentationValueDecimal",
                        "presentation": {"id": "a8a0", "label": "Password Length"}}]}]}),
        );
    }

    #[test]
    fn resources_passed_over_say_why() {
        let check = |body: &str, expect: &str| {
            let r = records(body);
            assert!(r.records.is_empty(), "{body}");
            assert_eq!(r.skipped, vec![expect.to_string()]);
        };
        check(
            "        IntuneDeviceAndAppManagementAssignmentFilter 'F'\n        {\n            DisplayName = 'F'\n            Ensure = 'Absent'\n        }",
            "IntuneDeviceAndAppManagementAssignmentFilter 'F' (line 17): Ensure = 'Absent' removes it; it is not a policy",
        );
        check(
            "        IntuneAccountProtectionLocalUserGroupMembershipPolicy \"LUGM\"\n        {\n            DisplayName = 'x'\n        }",
            &format!(
                "IntuneAccountProtectionLocalUserGroupMembershipPolicy 'LUGM' (line 17): {BY_NAME}"
            ),
        );
        check(
            "        IntuneRoleDefinition 'R' { DisplayName = 'x' }",
            "IntuneRoleDefinition 'R' (line 17): Intune roles are not modelled",
        );
        check(
            "        EXOMailboxSettings 'M' { DisplayName = 'x' }",
            "EXOMailboxSettings 'M' (line 17): a Microsoft365DSC resource ringmaster has no mapping for",
        );
        // A group is read, but members named by UPN are not.
        let r = records(
            "        AADGroup 'G'\n        {\n            DisplayName = 'G'\n            Members = @('ada@contoso.com')\n        }",
        );
        assert_eq!(r.records.len(), 1);
        assert!(
            r.skipped[0]
                .starts_with("AADGroup 'G' (line 17): Members name users by user principal name"),
            "{:?}",
            r.skipped
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let check = |body: &str, line: usize, expect: &str| {
            let e = read(Path::new("x.ps1"), &config(body)).unwrap_err();
            assert_eq!((e.line, e.message.as_str()), (Some(line), expect), "{body}");
        };
        check(
            "        IntuneX 'a'\n        {\n            DisplayName 'x'\n        }",
            19,
            "expected `=` after `DisplayName` (column 25)",
        );
        check(
            "        IntuneX 'a'\n        {\n            A = 1 2\n        }",
            19,
            "expected a new line, `;` or `}` after the value of `A` (column 19)",
        );
        check(
            "        IntuneX 'a'\n        {\n            A = 'x\n        }",
            19,
            "string has no closing `'` (column 17)",
        );
        check(
            "        IntuneX 'a'\n        {\n            A = @(1, 2\n",
            19,
            "this `@(` is never closed (column 17)",
        );
        check(
            "        IntuneX\n        {\n        }",
            17,
            "resource `IntuneX` needs a title (column 9)",
        );
        check(
            "        IntuneX 'a'\n            A = 1\n",
            18,
            "expected `{` after the title of `IntuneX` (column 13)",
        );
    }

    #[test]
    fn braces_on_the_same_line() {
        let text = "Configuration Tenant {\n    Node localhost {\n        IntuneDeviceAndAppManagementAssignmentFilter 'Surface' {\n            DisplayName = 'Surface'\n            Platform    = 'windows10AndLater'\n            Rule        = \"(device.model -startsWith `\"Surface`\")\"\n            Ensure      = 'Present'\n        }\n    }\n}\n";
        let r = read(Path::new("x.ps1"), text).unwrap();
        assert_eq!(r.skipped, Vec::<String>::new());
        assert_eq!(r.records[0].line, Some(3));
        assert_eq!(
            r.records[0].value["rule"],
            "(device.model -startsWith \"Surface\")"
        );
    }

    #[test]
    fn configurations_are_told_from_scripts() {
        for (text, expect) in [
            ("Configuration Example\n{\n}", true),
            ("configuration M365TenantConfig {\n}", true),
            ("<#\nConfiguration Example\n#>\n$a = 1", false),
            ("# Configuration of the tenant\n$x = 1", false),
            ("Write-Host 'Configuration done'", false),
            ("$configuration = @{}", false),
        ] {
            assert_eq!(is_configuration(text), expect, "{text}");
        }
    }

    /// Every Graph type the table maps to is one of the beta schema's types
    /// (shared/graph/graph-intune-beta.json, beside the corpus).
    #[test]
    fn mapped_types_are_graph_types() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/graph/graph-intune-beta.json");
        let Ok(text) = std::fs::read_to_string(&p) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "schema missing at {}",
                p.display()
            );
            return;
        };
        let schema: Value = serde_json::from_str(&text).unwrap();
        let types = schema["types"].as_object().unwrap();
        let mut checked = 0;
        for (resource, target) in RESOURCES {
            let t = match target {
                Target::Legacy(t) => *t,
                Target::Filter => "deviceAndAppManagementAssignmentFilter",
                Target::Admx => "groupPolicyConfiguration",
                Target::Catalog => "deviceManagementConfigurationPolicy",
                Target::Group | Target::Skip(_) => continue,
            };
            assert!(
                types.contains_key(t),
                "{resource} maps to {t}, which is not a Graph type"
            );
            checked += 1;
        }
        assert_eq!(checked, 45);
    }
}
