"""The PDF report of one study (reportlab): what was analysed, each model's findings with the
calibrated probability, decision and refer flag, heat-map overlays and outlines, region sizes,
model names/versions/licences, the reviewer's decision, and "Not for diagnostic use".
Numbers are printed exactly as the JSON result rounds them (fmt), so the two agree."""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any, List, Optional

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table,
                                TableStyle)
from xml.sax.saxutils import escape

from .schemas import StudyOut
from .settings import Settings

NOTICE = "Not for diagnostic use."


def fmt(x: Optional[float], digits: int = 4) -> str:
    """A probability or size as the report prints it (and the test reads it back)."""
    return "n/a" if x is None else f"{x:.{digits}f}"


def yesno(x: Optional[bool]) -> str:
    return "n/a" if x is None else ("positive" if x else "negative")


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def _picture(path: Path, width: float) -> Optional[Image]:
    if not path.is_file():
        return None
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        w, h = im.size
    return Image(str(path), width=width, height=width * h / max(w, 1))


def build_pdf(study: StudyOut, results_dir: Path, settings: Settings, db_study: Any = None,
              store: Any = None) -> bytes:
    ss = getSampleStyleSheet()
    body, small, h1, h2 = ss["BodyText"], ss["Italic"], ss["Title"], ss["Heading2"]
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=18 * mm,
                            title=f"medvision report {study.id}", author="medvision server")

    def footer(canvas: Any, d: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica-Bold", 9)
        canvas.drawString(15 * mm, 10 * mm, f"{NOTICE}  Research software: results support "
                                            "clinicians and never replace them.")
        canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"page {d.page}")
        canvas.restoreState()

    P = lambda text, style=body: Paragraph(escape(text), style)  # noqa: E731
    story: List[Any] = [P("medvision analysis report", h1),
                        Paragraph(f"<b>{escape(NOTICE)}</b>", body), Spacer(1, 4 * mm)]
    what = [["Study", study.id], ["Modality", study.modality or "n/a"],
            ["Body part", study.body_part or "n/a"], ["View", study.view or "n/a"],
            ["Study Instance UID", study.study_uid or "n/a"],
            ["Series Instance UID", study.series_uid or "n/a"],
            ["Input", study.kind], ["Uploaded", _utc(study.created_at)],
            ["Analysed", _utc(study.job.finished_at or study.created_at)],
            ["Uploaded by", study.owner]]
    if settings.pdf_patient_identity and db_study is not None and store is not None:
        # A batch may hold many patients: no one identity belongs on its report.
        what += ([["Patient", "a batch of files (not printed)"]] if study.kind == "batch"
                 else _identity_rows(db_study, store))
    story.append(_table(what, col0=45 * mm))

    for r in study.results:
        block: List[Any] = [Spacer(1, 5 * mm),
                            P(f"{r.model.name} {r.model.version} ({r.task})", h2),
                            P(f"Notice: {r.model.notice}"),
                            P(f"Licence: {r.model.licence or 'see the model card'}", small)]
        if r.labels:
            rows = [["Label", "Calibrated probability", "Score (raw)", "Decision", "Refer",
                     "Conformal set"]]
            for x in r.labels:
                rows.append([x.label, fmt(x.calibrated), fmt(x.probability), yesno(x.decision),
                             P(f"REFER (band {fmt(x.refer_band[0])}-{fmt(x.refer_band[1])}; "
                               f"{x.refer_rule})", small) if x.refer and x.refer_band
                             else "REFER" if x.refer else "no",
                             ", ".join(x.conformal_set) if x.conformal_set else "n/a"])
            t = _table(rows, header=True)
            for i, x in enumerate(r.labels, start=1):
                if x.refer:
                    t.setStyle(TableStyle([("TEXTCOLOR", (4, i), (4, i), colors.HexColor(
                        "#b35900")), ("FONTNAME", (4, i), (4, i), "Helvetica-Bold")]))
            block.append(t)
            if isinstance(r.conformal, dict) and "set" in r.conformal:
                block.append(P(f"Conformal set (alpha {r.conformal.get('alpha')}): "
                               f"{', '.join(r.conformal['set'])}"))
        if r.items:
            # A batch: one row per file and label, or the file's own error.
            rows = [["File", "Label", "Calibrated probability", "Score (raw)", "Decision",
                     "Refer"]]
            for it in r.items:
                if it.error:
                    rows.append([it.file, P(f"not classified: {it.error}", small), "", "", "",
                                 ""])
                for x in it.labels:
                    rows.append([it.file, x.label, fmt(x.calibrated), fmt(x.probability),
                                 yesno(x.decision), "REFER" if x.refer else "no"])
            block.append(P(f"{len(r.items)} files, {r.failed} not classified", small))
            block.append(_table(rows, header=True))
        if r.regions:
            rows = [["Region", "Voxels", "Area (mm2)", "Volume (ml)", "Components"]]
            # No pixel spacing: the voxel count is the measurement, never a size in false units.
            rows += [[g.name, str(g.voxels),
                      fmt(g.area_mm2, 1) if g.spacing_known else "spacing unknown",
                      fmt(g.volume_ml, 2) if g.spacing_known else "spacing unknown",
                      str(g.components)] for g in r.regions]
            block.append(_table(rows, header=True))
        pics = []
        for x in r.labels:
            if x.overlay:
                pic = _picture(results_dir / x.overlay.split("/files/", 1)[1], 55 * mm)
                if pic:
                    pics.append([pic, P(f"Grad-CAM: {x.label}", small)])
        if "overlay" in r.links:
            pic = _picture(results_dir / r.links["overlay"].split("/files/", 1)[1], 70 * mm)
            if pic:
                pics.append([pic, P("Segmentation outlines", small)])
        for pic, cap in pics:
            block.append(KeepTogether([Spacer(1, 2 * mm), pic, cap]))
        if r.ood and r.ood.get("score") is not None:
            o = r.ood
            block.append(P(f"Out-of-distribution score {o['score']:.1f} ({o['label']}, "
                           f"percentile {o['percentile']:.0f} of the calibration images; far "
                           f"above {o['far_above']:.0f}; not a probability)"
                           + (": FAR" if o["far"] else ""), small))
        if r.warnings:
            block.append(P("Warnings: " + "; ".join(r.warnings), small))
        story += block

    story += [Spacer(1, 5 * mm), P("Review", h2)]
    if not study.reviews:
        story.append(P("Not reviewed yet."))
    for rv in study.reviews:
        story.append(P(f"Reviewed by {rv.reviewer} on {_utc(rv.created_at)}: "
                       f"{rv.comment or 'no comment'}"))
        rows = [["Model", "Finding", "Reviewer", "Comment"]]
        rows += [[f.model, f.label, "agrees" if f.agree else "DISAGREES", f.comment]
                 for f in rv.findings]
        story.append(_table(rows, header=True))
    story += [Spacer(1, 6 * mm), Paragraph(f"<b>{escape(NOTICE)}</b> The AI result above is "
                                           "kept as computed; a reviewer's decision is stored "
                                           "beside it.", body)]
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


def _identity_rows(db_study: Any, store: Any) -> List[List[str]]:
    """Opt-in only (--pdf-patient-identity): name and ID read from the stored DICOM at print
    time; they are never stored, logged or sent anywhere else."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(store.path_of(db_study.files[0]["sha256"])),
                             stop_before_pixels=True, specific_tags=["PatientName", "PatientID"])
        return [["Patient name", str(ds.get("PatientName", ""))],
                ["Patient ID", str(ds.get("PatientID", ""))]]
    except Exception:
        return [["Patient", "not available"]]


def _table(rows: List[List[str]], header: bool = False, col0: Optional[float] = None) -> Table:
    t = Table(rows, colWidths=[col0, None] if col0 else None, hAlign="LEFT")
    style = [("FONTSIZE", (0, 0), (-1, -1), 8.5), ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
             ("VALIGN", (0, 0), (-1, -1), "TOP")]
    if header:
        style += [("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
                  ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold")]
    t.setStyle(TableStyle(style))
    return t
