"""The platform's report templates, as data (issue 14, item 1). Migration 0003 writes them (owner empty).

Plain data only (no model imports), so that the data migration can read it. Each entry is what
``reporting.templates.check_definition`` accepts, plus ``name``, ``modalities`` and ``body_parts``, the
keys ``reporting.templates.choose`` ranks by: a modality must match, then the longest body-part keyword
found in the study's body part or description wins. "General radiology" lists no modality: it fits any
study and is chosen only when no template for the study's modality exists. "Second opinion" (issue 17)
has the patient's plain-language summary section: ``reporting.templates.choose`` gives it to every read of
kind ``second_opinion``, whatever the modality, and to no other read.
"""

from __future__ import annotations


def _section(code: str, title: str, normal: str = "") -> dict:
    return {"code": code, "title": title, "normal": normal}


def _choice(code: str, label: str, choices: list[tuple[str, str]], *, section: str, required: bool = False) -> dict:
    return {"code": code, "label": label, "kind": "choice", "choices": [list(c) for c in choices],
            "unit": "", "required": required, "section": section}


def _number(code: str, label: str, unit: str, *, section: str = "findings") -> dict:
    return {"code": code, "label": label, "kind": "number", "choices": [], "unit": unit, "required": False,
            "section": section}


def _yesno(code: str, label: str, *, section: str = "findings") -> dict:
    return {"code": code, "label": label, "kind": "yesno", "choices": [], "unit": "", "required": False,
            "section": section}


CLINICAL = _section("clinical_information", "Clinical information")
COMPARISON = _section("comparison", "Comparison", "None available.")

# ACR BI-RADS Atlas, 5th edition (2013): assessment categories and breast composition.
BIRADS_CATEGORIES = [
    ("0", "0: Incomplete – need additional imaging evaluation and/or prior mammograms for comparison"),
    ("1", "1: Negative"),
    ("2", "2: Benign"),
    ("3", "3: Probably benign"),
    ("4", "4: Suspicious"),
    ("5", "5: Highly suggestive of malignancy"),
    ("6", "6: Known biopsy-proven malignancy"),
]
BREAST_DENSITY = [
    ("a", "a: The breasts are almost entirely fatty"),
    ("b", "b: There are scattered areas of fibroglandular density"),
    ("c", "c: The breasts are heterogeneously dense, which may obscure small masses"),
    ("d", "d: The breasts are extremely dense, which lowers the sensitivity of mammography"),
]
MAMMOGRAPHY_FIELDS = [
    _choice("breast_density", "Breast density (BI-RADS)", BREAST_DENSITY, section="findings", required=True),
    _choice("birads", "BI-RADS assessment category", BIRADS_CATEGORIES, section="impression", required=True),
]

# A second opinion states whether it agrees with the report the patient already has (issue 17).
AGREEMENT = "agreement"
AGREEMENT_CHOICES = [
    ("agrees", "Agrees with the original report"),
    ("partly_agrees", "Partly agrees with the original report"),
    ("disagrees", "Disagrees with the original report"),
    ("no_original", "No original report was given"),
]

SECOND_OPINION = {
    "name": "Second opinion",
    "modalities": [],
    "body_parts": [],
    "sections": [
        _section("clinical_information", "Clinical question"),
        _section("findings", "Findings"),
        _section("impression", "Impression"),
        # No normal text: the reader writes it for this patient (the editor shows how, as a placeholder).
        _section("patient_summary", "Plain-language summary for the patient"),
    ],
    "fields": [
        _choice(AGREEMENT, "Agreement with the original report", AGREEMENT_CHOICES, section="impression",
                required=True),
    ],
}

# An overread states whether it agrees with the report it reviews (issue 16); so does a peer review, on the
# ACR RADPEER scale (2016). Each template is for reads of its kind only (``reporting.templates.fits_kind``).
OVERREAD_AGREEMENT = "overread_agreement"
OVERREAD_AGREEMENT_CHOICES = [
    ("agree", "Agree with the original report"),
    ("minor", "Minor difference"),
    ("significant", "Significant difference"),
]
RADPEER_SCORE = "radpeer_score"
RADPEER_CHOICES = [
    ("1", "1: Concur with interpretation"),
    ("2a", "2a: Discrepancy not ordinarily expected to be made; unlikely to be clinically significant"),
    ("2b", "2b: Discrepancy not ordinarily expected to be made; likely to be clinically significant"),
    ("3a", "3a: Discrepancy that should be made most of the time; unlikely to be clinically significant"),
    ("3b", "3b: Discrepancy that should be made most of the time; likely to be clinically significant"),
]

OVERREAD = {
    "name": "Overread",
    "modalities": [],
    "body_parts": [],
    "sections": [
        _section("clinical_information", "Clinical question"),
        _section("findings", "Overread findings"),
        _section("impression", "Overread conclusion"),
    ],
    "fields": [
        _choice(OVERREAD_AGREEMENT, "Agreement with the original report", OVERREAD_AGREEMENT_CHOICES,
                section="impression", required=True),
    ],
}

PEER_REVIEW = {
    "name": "Peer review (RADPEER)",
    "modalities": [],
    "body_parts": [],
    "sections": [
        _section("findings", "What the original report missed or misread (empty when it concurs)"),
        _section("impression", "Comment"),
    ],
    "fields": [
        _choice(RADPEER_SCORE, "RADPEER score", RADPEER_CHOICES, section="impression", required=True),
    ],
}

TEMPLATES: list[dict] = [
    {
        "name": "CT head without contrast",
        "modalities": ["CT"],
        "body_parts": ["HEAD", "BRAIN", "SKULL", "CRANIAL"],
        "sections": [
            CLINICAL, COMPARISON,
            _section("technique", "Technique",
                     "Axial CT images of the head were obtained without intravenous contrast, with "
                     "multiplanar reformations in soft tissue and bone windows."),
            _section("findings", "Findings",
                     "Brain: No acute intracranial hemorrhage, mass effect or midline shift. Gray-white matter "
                     "differentiation is preserved. No acute territorial infarct is seen.\n"
                     "Ventricles and extra-axial spaces: Normal in size and configuration for age. No extra-axial "
                     "collection.\n"
                     "Bones and soft tissues: No acute fracture. The visualized paranasal sinuses and mastoid air "
                     "cells are clear."),
            _section("impression", "Impression", "No acute intracranial abnormality."),
        ],
        "fields": [
            _yesno("hemorrhage", "Intracranial hemorrhage"),
            _number("midline_shift", "Midline shift", "mm"),
        ],
    },
    {
        "name": "CT chest, abdomen and pelvis with contrast",
        "modalities": ["CT"],
        "body_parts": ["CHEST ABDOMEN PELVIS", "CHEST ABD PELVIS", "CHEST/ABD/PELVIS", "CHEST, ABDOMEN",
                       "ABDOMEN PELVIS", "ABD PELVIS", "ABDOMEN", "PELVIS", "CHEST", "THORAX"],
        "sections": [
            CLINICAL, COMPARISON,
            _section("technique", "Technique",
                     "Axial CT images of the chest, abdomen and pelvis were obtained after intravenous contrast "
                     "in the portal venous phase, with coronal and sagittal reformations."),
            _section("findings", "Findings",
                     "Chest: No pulmonary nodule, consolidation or pleural effusion. The central airways are "
                     "patent. Heart size is normal; no pericardial effusion. No thoracic lymphadenopathy.\n"
                     "Abdomen: The liver, gallbladder, spleen, pancreas and adrenal glands are unremarkable. The "
                     "kidneys enhance symmetrically without hydronephrosis or solid mass. No bowel obstruction "
                     "or bowel wall thickening. No free fluid or free air. No abdominal lymphadenopathy.\n"
                     "Pelvis: The urinary bladder is unremarkable. No pelvic mass or lymphadenopathy.\n"
                     "Vessels: The aorta is normal in caliber.\n"
                     "Bones: No aggressive osseous lesion or acute fracture."),
            _section("impression", "Impression", "No acute abnormality in the chest, abdomen or pelvis."),
        ],
        "fields": [],
    },
    {
        "name": "MR knee",
        "modalities": ["MR"],
        "body_parts": ["KNEE"],
        "sections": [
            CLINICAL, COMPARISON,
            _section("technique", "Technique",
                     "Multiplanar, multisequence MR images of the knee were obtained without intravenous "
                     "contrast."),
            _section("findings", "Findings",
                     "Menisci: The medial and lateral menisci are intact, without tear.\n"
                     "Ligaments: The anterior and posterior cruciate ligaments, the medial collateral ligament "
                     "and the lateral collateral ligamentous complex are intact.\n"
                     "Extensor mechanism: The quadriceps and patellar tendons are intact. The patella is "
                     "normally positioned.\n"
                     "Cartilage: Articular cartilage is preserved in all three compartments.\n"
                     "Bone marrow: No fracture or bone marrow edema.\n"
                     "Joint: No significant joint effusion. No popliteal cyst."),
            _section("impression", "Impression", "Normal MRI of the knee."),
        ],
        "fields": [
            _choice("acl", "Anterior cruciate ligament",
                    [("intact", "Intact"), ("partial", "Partial tear"), ("complete", "Complete tear")],
                    section="findings"),
            _choice("effusion", "Joint effusion",
                    [("none", "None"), ("small", "Small"), ("moderate", "Moderate"), ("large", "Large")],
                    section="findings"),
        ],
    },
    {
        "name": "Chest radiograph",
        "modalities": ["CR", "DX"],
        "body_parts": ["CHEST", "THORAX", "LUNG", "CXR"],
        "sections": [
            CLINICAL, COMPARISON,
            _section("technique", "Technique", "Frontal and lateral views of the chest."),
            _section("findings", "Findings",
                     "Lungs: Clear. No focal consolidation, pulmonary edema or pneumothorax.\n"
                     "Pleura: No pleural effusion.\n"
                     "Heart and mediastinum: The cardiomediastinal silhouette is within normal limits.\n"
                     "Bones and soft tissues: No acute osseous abnormality."),
            _section("impression", "Impression", "No acute cardiopulmonary process."),
        ],
        "fields": [
            _choice("views", "Views", [("pa_lateral", "PA and lateral"), ("ap", "AP only"),
                                       ("ap_portable", "AP portable")], section="technique"),
        ],
    },
    {
        "name": "US abdomen",
        "modalities": ["US"],
        "body_parts": ["ABDOMEN", "ABDOMINAL", "ABD", "RIGHT UPPER QUADRANT", "RUQ", "LIVER", "GALLBLADDER",
                       "RENAL", "KIDNEY"],
        "sections": [
            CLINICAL, COMPARISON,
            _section("technique", "Technique", "Real-time grayscale and color Doppler ultrasound of the abdomen."),
            _section("findings", "Findings",
                     "Liver: Normal in size and echotexture. No focal lesion. Hepatopetal portal venous flow.\n"
                     "Gallbladder: No gallstones, wall thickening or pericholecystic fluid. Sonographic Murphy "
                     "sign is negative.\n"
                     "Bile ducts: No intrahepatic or extrahepatic biliary dilatation.\n"
                     "Pancreas: The visualized portions are unremarkable.\n"
                     "Spleen: Normal in size.\n"
                     "Kidneys: Normal in size and echogenicity, without hydronephrosis, stone or mass.\n"
                     "Aorta and IVC: The visualized portions are normal in caliber.\n"
                     "No ascites."),
            _section("impression", "Impression", "Normal abdominal ultrasound."),
        ],
        "fields": [
            _number("cbd", "Common bile duct diameter", "mm"),
            _number("spleen_length", "Spleen length", "cm"),
        ],
    },
    {
        "name": "Screening mammography",
        "modalities": ["MG"],
        "body_parts": ["BREAST", "SCREEN", "MAMMO", "TOMO"],
        "sections": [
            CLINICAL,
            _section("comparison", "Comparison", "No prior mammograms available for comparison."),
            _section("technique", "Technique",
                     "Bilateral screening mammography: standard craniocaudal and mediolateral oblique views of "
                     "each breast."),
            _section("findings", "Findings",
                     "There is no suspicious mass, architectural distortion or suspicious grouping of "
                     "calcifications in either breast. The skin and nipples are unremarkable. No suspicious "
                     "axillary lymph nodes."),
            _section("impression", "Impression",
                     "No mammographic evidence of malignancy. Routine screening mammography in one year is "
                     "recommended."),
        ],
        "fields": MAMMOGRAPHY_FIELDS,
    },
    {
        "name": "Diagnostic mammography",
        "modalities": ["MG"],
        # Longer than the screening template's keywords, so that a description saying so wins.
        "body_parts": ["DIAGNOSTIC", "DIAG MAMMO", "MAMMO DIAG", "DIAG BREAST", "CALLBACK", "CALL BACK", "PALPABLE",
                       "SHORT INTERVAL", "SHORT-TERM FOLLOW"],
        "sections": [
            CLINICAL, COMPARISON,
            _section("technique", "Technique",
                     "Diagnostic mammography with standard and additional views (spot compression and "
                     "magnification as indicated) of the breast(s) in question."),
            _section("findings", "Findings",
                     "At the site of clinical or imaging concern there is no mammographic abnormality. There is "
                     "no suspicious mass, architectural distortion or suspicious calcification elsewhere."),
            _section("impression", "Impression",
                     "No mammographic evidence of malignancy at the site of concern. A palpable finding should "
                     "be managed on clinical grounds."),
        ],
        "fields": MAMMOGRAPHY_FIELDS,
    },
    {
        "name": "General radiology",
        "modalities": [],  # any modality: the fallback
        "body_parts": [],
        "sections": [
            CLINICAL, COMPARISON,
            _section("technique", "Technique"),
            _section("findings", "Findings"),
            _section("impression", "Impression"),
        ],
        "fields": [],
    },
    SECOND_OPINION,
    OVERREAD,
    PEER_REVIEW,
]
