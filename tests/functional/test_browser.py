"""A person with a browser: ``treadle serve DIR --upload`` driven through headless Chromium.

The other functional tests speak HTTP byte by byte; this one checks what they cannot:
that a real browser renders the listing as a person reads it, follows its relative
links (percent-encoded names included), submits the upload form as browsers really
encode it (multipart with the browser's own boundary and file name quoting) and lands
on the listing again after the 303, and that the page fits a phone's screen.

What is read from the page is what a person sees: ``element.text`` is the rendered
text, so an escaping mistake (``&amp;`` shown literally, a name taken for markup)
fails the test. Every wait is a ``WebDriverWait`` with a deadline; nothing sleeps.

Chromium runs headless with ``--no-sandbox`` (its sandbox refuses to start as root, as
in containers) and without any background traffic: this must work with no network at
all. The driver and browser paths are always given, so selenium never looks for (or
downloads) a driver of its own. The module is skipped only when selenium, chromium or
chromedriver is missing.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .helpers import ServerProcess

os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must never reach the network

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.wait import WebDriverWait
except ImportError:  # pragma: no cover - depends on the machine
    pytest.skip("selenium is not installed", allow_module_level=True)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:  # pragma: no cover - depends on the machine
    pytest.skip("chromium or chromedriver is not installed", allow_module_level=True)

#: the deadline of every wait on the browser
WAIT_S = 10.0
DESKTOP_SIZE = (1280, 900)
PHONE_WIDTH_PX, PHONE_HEIGHT_PX = 390, 844
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

LONG_NAME = "a-very-long-file-name-with-no-spaces-that-must-wrap-on-a-narrow-screen-0123456789.txt"
ESCAPED_NAME = "b&c <i>.txt"
UPLOAD_NAME = "zufällig data.bin"
UPLOAD_SIZE_BYTES = 6 * 1024


# ------------------------------------------------------------------------- fixtures


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The served folder: awkward names, two folders, a hidden file."""
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "guide.txt").write_text("How to use it.\n")
    (root / "My Photos").mkdir()
    (root / "a file.txt").write_text("with a space\n")
    (root / "été.txt").write_text("Summer notes\n")
    (root / "Zebra.txt").write_text("stripes\n")
    (root / ESCAPED_NAME).write_text("not markup\n")
    (root / ".hidden").write_text("never listed\n")
    return root


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium through chromedriver, quit at teardown whatever happened."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # the sandbox does not start as root (containers, CI)
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--no-proxy-server",
        f"--window-size={DESKTOP_SIZE[0]},{DESKTOP_SIZE[1]}",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(WAIT_S)
        driver.set_script_timeout(WAIT_S)
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(spawn: Callable[..., ServerProcess], site: Path) -> ServerProcess:
    return spawn("--upload", serve=site)


# -------------------------------------------------------------------------- helpers


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], object], what: str) -> None:
    """Wait up to WAIT_S for ``condition``; a page replaced meanwhile is simply retried."""
    WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,)).until(
        condition, f"timed out after {WAIT_S} s waiting for {what}"
    )


def entry_texts(driver: WebDriver) -> list[str]:
    """The names the listing shows, top to bottom, as rendered."""
    return [link.text for link in driver.find_elements(By.CSS_SELECTOR, "#listing a.entry")]


def heading(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "h1").text)


def click_entry(driver: WebDriver, shown_name: str) -> None:
    links = driver.find_elements(By.CSS_SELECTOR, "#listing a.entry")
    matching = [link for link in links if link.text == shown_name]
    assert len(matching) == 1, f"{shown_name!r} in {[link.text for link in links]}"
    matching[0].click()


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > len(PNG_SIGNATURE), f"{path} is empty"
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG: {data[:8]!r}"


def random_upload_bytes(size_bytes: int) -> bytes:
    """``size_bytes`` of reproducible noise, with multipart-looking lines inside."""
    noise = random.Random(0x7EAD1E).randbytes(size_bytes)
    decoys = b"\r\n--\r\n------WebKitFormBoundary\r\nContent-Disposition: form-data\r\n\r\n"
    data = noise[:1000] + decoys + noise[1000:]
    return data[:size_bytes]


# ---------------------------------------------------------------------------- tests


def test_a_person_browses_the_listing(browser: WebDriver, served: ServerProcess) -> None:
    root_url = served.url + "/"
    browser.get(root_url)
    wait_for(browser, lambda d: d.find_elements(By.ID, "listing"), "the listing table")

    assert browser.title == "Index of /"
    assert heading(browser) == "Index of /"
    # folders first, then files; names as written (escaped markup shows as text)
    assert entry_texts(browser) == [
        "docs/",
        "My Photos/",
        "a file.txt",
        ESCAPED_NAME,
        "Zebra.txt",
        "été.txt",
    ]
    folders = browser.find_elements(By.CSS_SELECTOR, "#listing a.entry.dir")
    assert [link.text for link in folders] == ["docs/", "My Photos/"]
    assert browser.find_elements(By.CSS_SELECTOR, "a.parent") == []  # no parent of "/"
    assert browser.find_element(By.TAG_NAME, "footer").text == "2 folders, 4 files"

    click_entry(browser, "docs/")
    wait_for(browser, lambda d: d.current_url.endswith("/docs/"), "the docs/ listing")
    assert browser.current_url == served.url + "/docs/"
    assert browser.title == "Index of /docs/"
    assert heading(browser) == "Index of /docs/"
    assert entry_texts(browser) == ["guide.txt"]

    parent = browser.find_element(By.CSS_SELECTOR, "#listing a.parent")
    assert parent.text == "../"
    parent.click()
    wait_for(browser, lambda d: d.current_url == root_url, "the root listing again")
    assert heading(browser) == "Index of /"
    assert "été.txt" in entry_texts(browser)

    # a unicode name survives the round trip through its percent-encoded href
    click_entry(browser, "été.txt")
    wait_for(browser, lambda d: d.current_url.endswith("/%C3%A9t%C3%A9.txt"), "été.txt")
    assert browser.find_element(By.TAG_NAME, "body").text == "Summer notes"


def test_a_person_uploads_a_file_through_the_form(
    browser: WebDriver, served: ServerProcess, site: Path, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    local = outbox / UPLOAD_NAME
    data = random_upload_bytes(UPLOAD_SIZE_BYTES)
    local.write_bytes(data)
    root_url = served.url + "/"

    browser.get(root_url)
    wait_for(browser, lambda d: d.find_elements(By.ID, "upload"), "the upload form")
    assert UPLOAD_NAME not in entry_texts(browser)
    browser.find_element(By.ID, "upload-files").send_keys(str(local.resolve()))
    browser.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    wait_for(browser, lambda d: UPLOAD_NAME in entry_texts(d), f"{UPLOAD_NAME!r} in the listing")

    assert browser.current_url == root_url  # the 303 led back to the folder's listing
    assert heading(browser) == "Index of /"
    rows = browser.find_elements(By.CSS_SELECTOR, "#listing tr.file")
    sizes = {
        row.find_element(By.CSS_SELECTOR, "a.entry").text: row.find_element(
            By.CSS_SELECTOR, "td.size"
        ).text
        for row in rows
    }
    assert sizes[UPLOAD_NAME] == "6.0 KiB"
    assert (site / UPLOAD_NAME).read_bytes() == data
    assert [name for name in os.listdir(site) if name.endswith(".part")] == []

    screenshot = tmp_path / "listing.png"
    assert browser.save_screenshot(str(screenshot))
    assert_png(screenshot)


def test_the_listing_fits_a_phone_screen(
    browser: WebDriver, served: ServerProcess, site: Path, tmp_path: Path
) -> None:
    (site / LONG_NAME).write_text("long\n")
    # a phone: narrow, dense, and honouring the page's viewport meta tag
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": PHONE_WIDTH_PX,
            "height": PHONE_HEIGHT_PX,
            "deviceScaleFactor": 3,
            "mobile": True,
        },
    )
    browser.get(served.url + "/")
    wait_for(browser, lambda d: LONG_NAME in entry_texts(d), "the listing with the long name")

    inner_width_px = browser.execute_script("return window.innerWidth")
    assert inner_width_px == PHONE_WIDTH_PX  # the viewport is the phone's, not 980 px
    layout = browser.execute_script(
        """
        const scroller = document.querySelector('.scroll');
        const rights = Array.from(
            document.querySelectorAll('#listing a.entry, #upload input, #upload button'),
            (element) => element.getBoundingClientRect().right);
        return {
            document: document.documentElement.scrollWidth,
            table: scroller.scrollWidth - scroller.clientWidth,
            rightmost: Math.max(...rights),
            font: parseFloat(getComputedStyle(document.querySelector('a.entry')).fontSize),
        };
        """
    )
    assert layout["document"] <= inner_width_px + 1, layout  # no sideways scroll
    assert layout["table"] <= 1, layout  # nor inside the table's own scroller
    assert layout["rightmost"] <= inner_width_px + 1, layout  # every name and control shows
    assert layout["font"] >= 14, layout  # readable without zooming

    screenshot = tmp_path / "listing-phone.png"
    assert browser.save_screenshot(str(screenshot))
    assert_png(screenshot)
