"""A real headless Chromium (Debian chromium + chromedriver, selenium) against the real `serve`
process: sign in, upload a chest X-ray DICOM by the file picker, wait for the result without
reloading, check the heat-map overlay is drawn and the labels shown, use the keyboard, download
the PDF. Screenshots are kept in build/test-artefacts/server-browser/ (MV_TEST_ARTEFACTS)."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import CXR_DCM, PASSWORD, ROOT, ServeProcess, cli

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTEFACTS = Path(os.environ.get("MV_TEST_ARTEFACTS", ROOT / "build" / "test-artefacts")) \
    / "server-browser"


def _need() -> None:
    missing = [p for p in (CHROMIUM, DRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python3-selenium")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"needed in CI: {missing}")
        pytest.skip(f"not installed: {missing}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    _need()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="mv-chromium-")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1600",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.downloads = downloads
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def shot(drv: Any, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    drv.save_screenshot(str(ARTEFACTS / f"{name}.png"))


def wait_for(cond: Any, timeout: float, what: str) -> Any:
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_page_end_to_end(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    data = tmp_path / "data"
    assert cli("user", "add", "alice", "--role", "clinician", "--data", str(data),
               stdin=PASSWORD + "\n").returncode == 0
    srv = ServeProcess(data, "--workers", "1").start()
    drv = browser
    try:
        drv.get(srv.url + "/")
        assert "Not for diagnostic use." in drv.find_element(By.ID, "global-notice").text
        # Sign in with the keyboard only: type, Tab, type, Enter.
        user = drv.find_element(By.ID, "login-user")
        user.send_keys("alice", Keys.TAB, PASSWORD, Keys.ENTER)
        wait_for(lambda: drv.find_element(By.ID, "view-studies").is_displayed(), 30,
                 "the studies view")
        shot(drv, "1-signed-in")
        # Drag and drop: a synthetic drop event with a File lists it as chosen.
        drv.execute_script("""
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array([1, 2, 3])], 'dropped.dcm'));
            const ev = new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true});
            document.querySelector('#dropzone').dispatchEvent(ev);""")
        assert "dropped.dcm" in drv.find_element(By.ID, "chosen").text
        # The drop zone is reachable and is a button for assistive technology.
        dz = drv.find_element(By.ID, "dropzone")
        assert dz.get_attribute("tabindex") == "0" and dz.get_attribute("role") == "button"
        # Upload with the picker.
        drv.find_element(By.ID, "file-input").send_keys(str(CXR_DCM))
        drv.find_element(By.ID, "upload-submit").click()
        wait_for(lambda: "Accepted" in drv.find_element(By.ID, "status").text, 60, "upload")
        shot(drv, "2-uploaded")
        # The list updates by itself (no reload) until the job has succeeded.
        row = wait_for(lambda: drv.find_elements(
            By.CSS_SELECTOR, "#studies tbody tr[data-state=succeeded]"), 300, "the result")
        shot(drv, "3-succeeded")
        row[0].find_element(By.TAG_NAME, "button").click()
        wait_for(lambda: drv.find_element(By.ID, "heat-canvas").get_attribute("data-drawn")
                 == "1", 60, "the heat-map overlay")
        painted = drv.execute_script("""
            const c = document.querySelector('#heat-canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return [n, c.width, c.height];""")
        assert painted[0] > 0 and painted[1] == 224 and painted[2] == 224, painted
        # Labels: each model card with its version and notice; calibrated probability first.
        cards = drv.find_elements(By.CSS_SELECTOR, "article.model")
        assert [c.get_attribute("data-model") for c in cards] == \
            ["cxr-pneumonia", "cxr-findings", "cxr-lungs"]
        for c in cards:
            assert "Not for diagnostic use." in c.find_element(By.CSS_SELECTOR,
                                                               ".model-notice").text
        # Issue 16: calibrated packages with a drift reference show the OOD score, named as
        # not a probability; the segmentation model has none.
        for c in cards[:2]:
            ood = c.find_element(By.CSS_SELECTOR, "p.ood").text
            assert ood.startswith("Out-of-distribution score ") and "not a probability" in ood
        assert not cards[2].find_elements(By.CSS_SELECTOR, "p.ood")
        rows = drv.find_elements(By.CSS_SELECTOR, "table.labels tbody tr")
        assert len(rows) == 14
        heads = [h.text for h in drv.find_elements(By.CSS_SELECTOR, "table.labels th")][:6]
        assert heads[1] == "Calibrated probability" and heads[2] == "Score (raw)"
        assert rows[0].find_element(By.CSS_SELECTOR, "td.calibrated").text.endswith("%")
        assert drv.find_elements(By.CSS_SELECTOR, "table.regions tbody tr")
        # Keyboard on the viewer: opacity down with the arrow keys, heat map off with Space.
        slider = drv.find_element(By.ID, "heat-opacity")
        slider.send_keys(Keys.HOME)
        wait_for(lambda: drv.execute_script(
            "return document.querySelector('#heat-opacity').value") == "0", 10, "slider")
        drv.find_element(By.ID, "heat-toggle").send_keys(Keys.SPACE)
        wait_for(lambda: drv.find_element(By.ID, "heat-canvas").get_attribute("data-drawn")
                 == "0", 10, "the overlay hidden")
        drv.find_element(By.ID, "heat-toggle").send_keys(Keys.SPACE)
        slider.send_keys(*[Keys.RIGHT] * 50)
        wait_for(lambda: drv.find_element(By.ID, "heat-canvas").get_attribute("data-drawn")
                 == "1" and drv.execute_script(
                     "return document.querySelector('#heat-opacity').value") == "50", 10,
                 "the overlay back at 50 %")
        shot(drv, "4-heatmap")
        drv.find_element(By.ID, "outline-toggle").send_keys(Keys.SPACE)
        wait_for(lambda: drv.find_element(By.ID, "heat-canvas").get_attribute("data-drawn")
                 == "1" and "blob:" in drv.find_element(By.ID, "base-img").get_attribute("src"),
                 10, "the outlines")
        shot(drv, "5-outlines")
        # The PDF.
        drv.find_element(By.ID, "pdf-download").send_keys(Keys.ENTER)
        pdf = wait_for(lambda: [p for p in drv.downloads.glob("*.pdf")
                                if p.stat().st_size > 0], 60, "the PDF download")[0]
        assert pdf.read_bytes()[:5] == b"%PDF-"
        shot(drv, "6-pdf")
        assert "Not for diagnostic use." in drv.find_element(By.ID, "global-notice").text
    finally:
        srv.stop()


def test_batch_study_on_the_page(browser: Any, tmp_path: Path) -> None:
    """A batch upload from the page (the Batch box ticked, three files picked): the status names
    each file's place, and the study shows one row per file, the bad one with its error."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from images import cxr_png

    data = tmp_path / "data"
    assert cli("user", "add", "alice", "--role", "clinician", "--data", str(data),
               stdin=PASSWORD + "\n").returncode == 0
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image\n")
    files = [CXR_DCM, notes, cxr_png(tmp_path / "small.png", 256)]
    srv = ServeProcess(data, "--workers", "1").start()
    drv = browser
    try:
        drv.get(srv.url + "/")
        drv.find_element(By.ID, "login-user").send_keys("alice", Keys.TAB, PASSWORD, Keys.ENTER)
        wait_for(lambda: drv.find_element(By.ID, "view-studies").is_displayed(), 30,
                 "the studies view")
        drv.find_element(By.ID, "batch-input").click()
        drv.find_element(By.ID, "file-input").send_keys("\n".join(str(p) for p in files))
        drv.find_element(By.ID, "upload-submit").click()
        text = wait_for(lambda: "Accepted" in drv.find_element(By.ID, "status").text and
                        drv.find_element(By.ID, "status").text, 60, "upload")
        assert "file 2 (notes.txt)" in text, text
        row = wait_for(lambda: drv.find_elements(
            By.CSS_SELECTOR, "#studies tbody tr[data-state=succeeded]"), 300, "the result")
        row[0].find_element(By.TAG_NAME, "button").click()
        wait_for(lambda: drv.find_elements(By.CSS_SELECTOR, "table.items tbody tr"), 60,
                 "the batch table")
        rows = drv.find_elements(By.CSS_SELECTOR, "table.items tbody tr")
        assert [r.get_attribute("data-file") for r in rows] == ["file 1", "file 2", "file 3"]
        assert "not classified: file 2: " in rows[1].text
        assert rows[0].find_element(By.CSS_SELECTOR, "td.calibrated").text.endswith("%")
        assert not drv.find_element(By.ID, "viewer").is_displayed()  # no one image to show
        shot(drv, "7-batch")
    finally:
        srv.stop()
