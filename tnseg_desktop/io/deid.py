"""De-identification for exports meant for training (DICOM PS3.15 Annex E, basic profile).

Training exports carry no DICOM header at all, only pixels, masks and a
manifest, so de-identification here means three things: identifiers become
salted hashes (a per-store secret, so the same study always gets the same
pseudonym and no one without the store can reverse it); nothing from the
attributes below is written to any file or file name; and pixels outside the
ultrasound regions are blanked where text may be burned into the image.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Iterable

import numpy as np

# Attributes of the PS3.15 Table E.1-1 basic application level confidentiality profile that
# can identify a patient, a visit or a site (UIDs are not listed: exports never carry them).
BASIC_PROFILE_KEYWORDS: tuple[str, ...] = (
    "AccessionNumber", "AcquisitionDate", "AcquisitionDateTime", "AcquisitionTime", "AdditionalPatientHistory",
    "AdmissionID", "AdmittingDiagnosesDescription", "Allergies", "BranchOfService", "ConsultingPhysicianName",
    "ContentCreatorName", "ContentDate", "ContentTime", "CountryOfResidence", "CurrentPatientLocation",
    "DeviceSerialNumber", "EthnicGroup", "FillerOrderNumberImagingServiceRequest", "InstitutionAddress",
    "InstitutionalDepartmentName", "InstitutionName", "IssuerOfPatientID", "MedicalAlerts", "MedicalRecordLocator",
    "MilitaryRank", "NameOfPhysiciansReadingStudy", "Occupation", "OperatorsName", "OtherPatientIDs",
    "OtherPatientNames", "PatientAddress", "PatientAge", "PatientBirthDate", "PatientBirthName",
    "PatientBirthTime", "PatientComments", "PatientID", "PatientInsurancePlanCodeSequence",
    "PatientMotherBirthName", "PatientName", "PatientReligiousPreference", "PatientSex", "PatientSize",
    "PatientState", "PatientTelephoneNumbers", "PatientWeight", "PerformingPhysicianName",
    "PhysiciansOfRecord", "PlacerOrderNumberImagingServiceRequest", "ReferringPhysicianAddress",
    "ReferringPhysicianName", "ReferringPhysicianTelephoneNumbers", "RequestingPhysician", "ResponsiblePerson",
    "ResponsibleOrganization", "SeriesDate", "SeriesTime", "StationName", "StudyDate", "StudyDescription",
    "StudyID", "StudyTime", "InstanceCreationDate", "InstanceCreationTime", "InstitutionCodeSequence",
    "ProtocolName", "RequestAttributesSequence", "SeriesDescription", "VisitComments", "AdmittingDate",
    "AdmittingTime", "PatientPrimaryLanguageCodeSequence", "RegionOfResidence", "DerivationDescription",
    "ImageComments", "RequestedProcedureDescription", "PerformedProcedureStepDescription",
    "ScheduledProcedureStepDescription", "PerformedProcedureStepID", "RequestedProcedureID",
)


def pseudonym(value: str, salt: str, length: int = 16) -> str:
    """A salted, keyed hash of ``value``: stable within one store, meaningless without its salt."""
    digest = hmac.new(salt.encode(), str(value).encode(), hashlib.sha256).hexdigest()
    return digest[:length]


def needs_blanking(burned_in_annotation: str | None) -> bool:
    """Text may be burned into the pixels unless the source says BurnedInAnnotation NO."""
    return str(burned_in_annotation or "").strip().upper() != "NO"


def blank_outside_regions(frame: np.ndarray, regions: Iterable[tuple[int, int, int, int]]) -> np.ndarray:
    """A copy of ``frame`` with every pixel outside the ultrasound regions (x0, y0, x1, y1 inclusive) set to 0."""
    keep = np.zeros(frame.shape[:2], dtype=bool)
    for x0, y0, x1, y1 in regions:
        keep[max(0, int(y0)):int(y1) + 1, max(0, int(x0)):int(x1) + 1] = True
    out = np.zeros_like(frame)
    out[keep] = frame[keep]
    return out


def identifying_values(dataset: object, min_length: int = 3) -> set[str]:
    """The non-empty text values of the basic-profile attributes of a pydicom Dataset (for PHI scans)."""
    values: set[str] = set()
    for kw in BASIC_PROFILE_KEYWORDS:
        value = getattr(dataset, kw, None)
        if value is None or kw.endswith("Sequence"):
            continue
        items = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
        for item in items:
            text = str(item).strip()
            if len(text) >= min_length:
                values.add(text)
                values.update(p for p in text.split("^") if len(p.strip()) >= min_length)
    return values
