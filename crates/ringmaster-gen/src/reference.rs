//! Reference data the generator draws from: places, departments, device
//! models and OS builds, and real settings-catalog setting ids.

pub struct City {
    pub name: &'static str,
    pub country: &'static str,
    pub region: &'static str,
    pub weight: u32,
}

pub static CITIES: &[City] = &[
    City {
        name: "New York",
        country: "US",
        region: "AMER",
        weight: 14,
    },
    City {
        name: "Seattle",
        country: "US",
        region: "AMER",
        weight: 9,
    },
    City {
        name: "Chicago",
        country: "US",
        region: "AMER",
        weight: 7,
    },
    City {
        name: "Toronto",
        country: "CA",
        region: "AMER",
        weight: 5,
    },
    City {
        name: "São Paulo",
        country: "BR",
        region: "AMER",
        weight: 5,
    },
    City {
        name: "London",
        country: "GB",
        region: "EMEA",
        weight: 11,
    },
    City {
        name: "Manchester",
        country: "GB",
        region: "EMEA",
        weight: 4,
    },
    City {
        name: "Berlin",
        country: "DE",
        region: "EMEA",
        weight: 6,
    },
    City {
        name: "Munich",
        country: "DE",
        region: "EMEA",
        weight: 4,
    },
    City {
        name: "Paris",
        country: "FR",
        region: "EMEA",
        weight: 6,
    },
    City {
        name: "Amsterdam",
        country: "NL",
        region: "EMEA",
        weight: 4,
    },
    City {
        name: "Lagos",
        country: "NG",
        region: "EMEA",
        weight: 3,
    },
    City {
        name: "Bangalore",
        country: "IN",
        region: "APAC",
        weight: 8,
    },
    City {
        name: "Tokyo",
        country: "JP",
        region: "APAC",
        weight: 5,
    },
    City {
        name: "Sydney",
        country: "AU",
        region: "APAC",
        weight: 4,
    },
    City {
        name: "Singapore",
        country: "SG",
        region: "APAC",
        weight: 5,
    },
];

pub struct Department {
    pub name: &'static str,
    pub code: &'static str,
    pub weight: u32,
    pub titles: &'static [&'static str],
}

pub static DEPARTMENTS: &[Department] = &[
    Department {
        name: "Sales",
        code: "SAL",
        weight: 18,
        titles: &["Account Executive", "Sales Manager", "Sales Representative"],
    },
    Department {
        name: "Marketing",
        code: "MKT",
        weight: 8,
        titles: &["Marketing Specialist", "Brand Manager", "Content Writer"],
    },
    Department {
        name: "Engineering",
        code: "ENG",
        weight: 16,
        titles: &[
            "Software Engineer",
            "SDE II",
            "Principal Engineer",
            "QA Engineer",
        ],
    },
    Department {
        name: "Finance",
        code: "FIN",
        weight: 5,
        titles: &["Accountant", "Financial Analyst", "Controller"],
    },
    Department {
        name: "HR",
        code: "HRS",
        weight: 3,
        titles: &["HR Business Partner", "Recruiter"],
    },
    Department {
        name: "IT",
        code: "ITS",
        weight: 5,
        titles: &[
            "Endpoint Engineer",
            "Service Desk Analyst",
            "Systems Administrator",
        ],
    },
    Department {
        name: "Retail",
        code: "RET",
        weight: 20,
        titles: &["Store Associate", "Store Manager", "Shift Lead"],
    },
    Department {
        name: "Operations",
        code: "OPS",
        weight: 10,
        titles: &["Operations Analyst", "Logistics Coordinator"],
    },
    Department {
        name: "Legal",
        code: "LGL",
        weight: 2,
        titles: &["Counsel", "Paralegal"],
    },
    Department {
        name: "Customer Support",
        code: "SUP",
        weight: 11,
        titles: &["Support Agent", "Support Lead"],
    },
    Department {
        name: "Executive",
        code: "EXE",
        weight: 1,
        titles: &[
            "Chief Executive Officer",
            "Chief Financial Officer",
            "Vice President",
            "Chief Operating Officer",
        ],
    },
];

/// A device model with its platform and maker.
pub struct Model {
    pub platform: &'static str,
    pub os: &'static str,
    pub manufacturer: &'static str,
    pub model: &'static str,
    pub weight: u32,
}

pub static MODELS: &[Model] = &[
    Model {
        platform: "windows",
        os: "Windows",
        manufacturer: "Dell Inc.",
        model: "Latitude 7440",
        weight: 16,
    },
    Model {
        platform: "windows",
        os: "Windows",
        manufacturer: "Dell Inc.",
        model: "Latitude 5540",
        weight: 10,
    },
    Model {
        platform: "windows",
        os: "Windows",
        manufacturer: "Dell Inc.",
        model: "OptiPlex 7010",
        weight: 6,
    },
    Model {
        platform: "windows",
        os: "Windows",
        manufacturer: "HP",
        model: "HP EliteBook 840 G10",
        weight: 10,
    },
    Model {
        platform: "windows",
        os: "Windows",
        manufacturer: "HP",
        model: "HP ProBook 450 G9",
        weight: 5,
    },
    Model {
        platform: "windows",
        os: "Windows",
        manufacturer: "LENOVO",
        model: "ThinkPad T14 Gen 4",
        weight: 8,
    },
    Model {
        platform: "windows",
        os: "Windows",
        manufacturer: "LENOVO",
        model: "ThinkPad X1 Carbon Gen 11",
        weight: 4,
    },
    Model {
        platform: "windows",
        os: "Windows",
        manufacturer: "Microsoft Corporation",
        model: "Surface Laptop 5",
        weight: 5,
    },
    Model {
        platform: "windows",
        os: "Windows",
        manufacturer: "Microsoft Corporation",
        model: "Surface Pro 9",
        weight: 3,
    },
    Model {
        platform: "windows",
        os: "Windows",
        manufacturer: "Microsoft Corporation",
        model: "Virtual Machine",
        weight: 2,
    },
    Model {
        platform: "windows",
        os: "Windows",
        manufacturer: "Microsoft Corporation",
        model: "Cloud PC Enterprise 4vCPU/16GB/256GB",
        weight: 1,
    },
    Model {
        platform: "macOS",
        os: "macOS",
        manufacturer: "Apple",
        model: "MacBook Pro (14-inch, 2023)",
        weight: 5,
    },
    Model {
        platform: "macOS",
        os: "macOS",
        manufacturer: "Apple",
        model: "MacBook Air (M2, 2022)",
        weight: 4,
    },
    Model {
        platform: "macOS",
        os: "macOS",
        manufacturer: "Apple",
        model: "iMac (24-inch, 2023)",
        weight: 1,
    },
    Model {
        platform: "iOS",
        os: "iOS",
        manufacturer: "Apple",
        model: "iPhone 15",
        weight: 5,
    },
    Model {
        platform: "iOS",
        os: "iOS",
        manufacturer: "Apple",
        model: "iPhone 14",
        weight: 3,
    },
    Model {
        platform: "iPadOS",
        os: "iOS",
        manufacturer: "Apple",
        model: "iPad Air (5th generation)",
        weight: 2,
    },
    Model {
        platform: "iPadOS",
        os: "iOS",
        manufacturer: "Apple",
        model: "iPad Pro 12.9",
        weight: 1,
    },
    Model {
        platform: "android",
        os: "Android",
        manufacturer: "samsung",
        model: "Galaxy S23",
        weight: 4,
    },
    Model {
        platform: "android",
        os: "Android",
        manufacturer: "samsung",
        model: "Galaxy Note20",
        weight: 1,
    },
    Model {
        platform: "android",
        os: "Android",
        manufacturer: "Google",
        model: "Pixel 8",
        weight: 2,
    },
    Model {
        platform: "android",
        os: "Android",
        manufacturer: "Zebra Technologies",
        model: "TC52",
        weight: 2,
    },
    Model {
        platform: "linux",
        os: "Linux",
        manufacturer: "Dell Inc.",
        model: "XPS 13 9320",
        weight: 1,
    },
];

/// OS builds per platform, with weights.
pub fn builds(platform: &str) -> &'static [(&'static str, u32)] {
    match platform {
        "windows" => &[
            ("10.0.19045.5011", 12),
            ("10.0.19045.4894", 6),
            ("10.0.22621.4317", 14),
            ("10.0.22631.4317", 26),
            ("10.0.22631.4460", 12),
            ("10.0.26100.2033", 16),
            ("10.0.26100.2314", 14),
        ],
        "macOS" => &[("13.7.1", 15), ("14.7.1", 45), ("15.1", 40)],
        "iOS" | "iPadOS" => &[("17.7.1", 35), ("18.1", 50), ("18.1.1", 15)],
        "android" => &[("13", 25), ("14", 50), ("15", 25)],
        _ => &[("22.04", 60), ("24.04", 40)],
    }
}

/// A setting and the values a policy may give it. Choice options are the
/// suffixes appended to the id, as the settings catalog spells them.
pub enum Value {
    Choice(&'static [&'static str]),
    Int(i64, i64),
}

pub struct Setting {
    pub id: &'static str,
    pub value: Value,
    /// The option most policies choose; others choose differently now and then.
    pub usual: usize,
}

pub struct Theme {
    pub name: &'static str,
    pub platform: &'static str,
    pub template_family: &'static str,
    pub settings: &'static [Setting],
    /// For group collections such as ASR rules: the parent setting id.
    pub collection: Option<&'static str>,
}

const fn choice(id: &'static str, options: &'static [&'static str], usual: usize) -> Setting {
    Setting {
        id,
        value: Value::Choice(options),
        usual,
    }
}

const fn int(id: &'static str, lo: i64, hi: i64) -> Setting {
    Setting {
        id,
        value: Value::Int(lo, hi),
        usual: 0,
    }
}

const BIN: &[&str] = &["0", "1"];
const ASR: &[&str] = &["off", "block", "audit", "warn"];
const TF: &[&str] = &["false", "true"];

pub static THEMES: &[Theme] = &[
    Theme {
        name: "Windows LAPS",
        platform: "windows10",
        template_family: "endpointSecurityAccountProtection",
        collection: None,
        settings: &[
            choice(
                "device_vendor_msft_laps_policies_backupdirectory",
                &["0", "1", "2"],
                1,
            ),
            choice(
                "device_vendor_msft_laps_policies_passwordcomplexity",
                &["1", "2", "3", "4", "5", "6", "7", "8"],
                3,
            ),
            int("device_vendor_msft_laps_policies_passwordlength", 14, 32),
            int("device_vendor_msft_laps_policies_passwordagedays", 7, 60),
            choice(
                "device_vendor_msft_laps_policies_postauthenticationactions",
                &["1", "3", "5"],
                1,
            ),
        ],
    },
    Theme {
        name: "Defender Antivirus",
        platform: "windows10",
        template_family: "endpointSecurityAntivirus",
        collection: None,
        settings: &[
            choice(
                "device_vendor_msft_policy_config_defender_allowrealtimemonitoring",
                BIN,
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_defender_allowcloudprotection",
                BIN,
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_defender_allowbehaviormonitoring",
                BIN,
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_defender_allowarchivescanning",
                BIN,
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_defender_submitsamplesconsent",
                &["0", "1", "2", "3"],
                3,
            ),
            choice(
                "device_vendor_msft_policy_config_defender_cloudblocklevel",
                &["0", "2", "4", "6"],
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_defender_puaprotection",
                &["0", "1", "2"],
                1,
            ),
        ],
    },
    Theme {
        name: "Attack Surface Reduction",
        platform: "windows10",
        template_family: "endpointSecurityAttackSurfaceReduction",
        collection: Some("device_vendor_msft_policy_config_defender_attacksurfacereductionrules"),
        settings: &[
            choice(
                "device_vendor_msft_policy_config_defender_attacksurfacereductionrules_blockexecutionofpotentiallyobfuscatedscripts",
                ASR,
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_defender_attacksurfacereductionrules_blockwin32apicallsfromofficemacros",
                ASR,
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_defender_attacksurfacereductionrules_blockcredentialstealingfromwindowslocalsecurityauthoritysubsystem",
                ASR,
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_defender_attacksurfacereductionrules_blockexecutablecontentfromemailclientandwebmail",
                ASR,
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_defender_attacksurfacereductionrules_useadvancedprotectionagainstransomware",
                ASR,
                2,
            ),
            choice(
                "device_vendor_msft_policy_config_defender_attacksurfacereductionrules_blockadobereaderfromcreatingchildprocesses",
                ASR,
                1,
            ),
        ],
    },
    Theme {
        name: "BitLocker",
        platform: "windows10",
        template_family: "endpointSecurityDiskEncryption",
        collection: None,
        settings: &[
            choice(
                "device_vendor_msft_bitlocker_requiredeviceencryption",
                BIN,
                1,
            ),
            choice(
                "device_vendor_msft_bitlocker_allowwarningforotherdiskencryption",
                BIN,
                0,
            ),
            choice(
                "device_vendor_msft_bitlocker_configurerecoverypasswordrotation",
                &["0", "1", "2"],
                1,
            ),
        ],
    },
    Theme {
        name: "Windows Firewall",
        platform: "windows10",
        template_family: "endpointSecurityFirewall",
        collection: None,
        settings: &[
            choice(
                "vendor_msft_firewall_mdmstore_domainprofile_enablefirewall",
                TF,
                1,
            ),
            choice(
                "vendor_msft_firewall_mdmstore_privateprofile_enablefirewall",
                TF,
                1,
            ),
            choice(
                "vendor_msft_firewall_mdmstore_publicprofile_enablefirewall",
                TF,
                1,
            ),
        ],
    },
    Theme {
        name: "Windows Sandbox",
        platform: "windows10",
        template_family: "none",
        collection: None,
        settings: &[
            choice(
                "device_vendor_msft_policy_config_windowssandbox_allownetworking",
                BIN,
                0,
            ),
            choice(
                "device_vendor_msft_policy_config_windowssandbox_allowclipboardredirection",
                BIN,
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_windowssandbox_allowvgpu",
                BIN,
                0,
            ),
        ],
    },
    Theme {
        name: "Location and Privacy",
        platform: "windows10",
        template_family: "none",
        collection: None,
        settings: &[
            choice(
                "device_vendor_msft_policy_config_system_allowlocation",
                &["0", "1", "2"],
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_privacy_letappsaccesslocation",
                &["0", "1", "2"],
                0,
            ),
        ],
    },
    Theme {
        name: "Audit and Event Logging",
        platform: "windows10",
        template_family: "none",
        collection: None,
        settings: &[
            choice(
                "device_vendor_msft_policy_config_audit_accountlogonlogoff_auditlogoff",
                &["0", "1", "2", "3"],
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_audit_detailedtracking_auditprocesscreation",
                &["0", "1", "2", "3"],
                1,
            ),
            choice(
                "device_vendor_msft_policy_config_admx_auditsettings_includecmdline",
                BIN,
                1,
            ),
        ],
    },
    Theme {
        name: "Device Lock",
        platform: "windows10",
        template_family: "none",
        collection: None,
        settings: &[
            int(
                "device_vendor_msft_policy_config_devicelock_maxinactivitytimedevicelock",
                5,
                15,
            ),
            choice(
                "device_vendor_msft_policy_config_devicelock_devicepasswordenabled",
                BIN,
                0,
            ),
        ],
    },
    Theme {
        name: "macOS Screen Lock",
        platform: "macOS",
        template_family: "none",
        collection: None,
        settings: &[
            int("com.apple.screensaver_idletime", 300, 1200),
            choice("com.apple.screensaver_askforpassword", TF, 1),
            choice("com.apple.applicationaccess_allowairdrop", TF, 0),
        ],
    },
];

/// Internet Explorer (legacy) zone settings: real settings-catalog ids of the
/// form `device_vendor_msft_policy_config_internetexplorer_<zone><setting>`,
/// used for settings-heavy policies.
pub static IE_ZONES: &[&str] = &[
    "internetzone",
    "intranetzone",
    "localmachinezone",
    "restrictedsiteszone",
    "trustedsiteszone",
    "lockeddowninternetzone",
    "lockeddownintranetzone",
    "lockeddownlocalmachinezone",
    "lockeddownrestrictedsiteszone",
    "lockeddowntrustedsiteszone",
];

pub static IE_SETTINGS: &[&str] = &[
    "allowaccesstodatasources",
    "allowactivescripting",
    "allowbinaryandscriptbehaviors",
    "allowcopypasteviascript",
    "allowdraganddropcopyandpastefiles",
    "allowfiledownloads",
    "allowfontdownloads",
    "allowlessprivilegedsites",
    "allowloadingofxamlfiles",
    "allowmetarefresh",
    "allownetframeworkreliantcomponents",
    "allowonlyapproveddomainstouseactivexcontrols",
    "allowonlyapproveddomainstousetdcactivexcontrol",
    "allowscriptinitiatedwindows",
    "allowscriptingofinternetexplorerwebbrowsercontrols",
    "allowscriptlets",
    "allowsmartscreenie",
    "allowupdatestostatusbarviascript",
    "allowuserdatapersistence",
    "allowvbscripttorunininternetexplorer",
    "donotrunantimalwareagainstactivexcontrols",
    "downloadsignedactivexcontrols",
    "downloadunsignedactivexcontrols",
    "enablecrosssitescriptingfilter",
    "enabledraggingofcontentfromdifferentdomainsacrosswindows",
    "enabledraggingofcontentfromdifferentdomainswithinwindows",
    "enablemimesniffing",
    "enableprotectedmode",
    "includelocalpathwhenuploadingfilestoserver",
    "initializeandscriptactivexcontrols",
    "javapermissions",
    "launchingapplicationsandfilesiniframe",
    "logonoptions",
    "navigatewindowsandframes",
    "runactivexcontrolsandplugins",
    "runnetframeworkreliantcomponentssignedwithauthenticode",
    "scriptactivexcontrolsmarkedsafeforscripting",
    "scriptingofjavaapplets",
    "showsecuritywarningforpotentiallyunsafefiles",
    "usepopupblocker",
];
