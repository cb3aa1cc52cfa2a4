"""Small page actions shared by the browser tests (Playwright, sync API)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

STATUS_TIMEOUT_MS = 150_000
"""Longest wait for a job's status to change (a conversion on a busy 2-core machine)."""


def upload(page: Any, elem_id: str, path: Path) -> None:
    """Put `path` into the file input of component `elem_id` and wait until it is shown."""
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    page.wait_for_selector(f"#{elem_id} [data-testid=download-link]")


def wait_for_status(page: Any, elem_id: str, *words: str, timeout: int = STATUS_TIMEOUT_MS,
                    changed_from: str | None = None) -> str:
    """Wait until the Markdown `elem_id`'s text (not Gradio's progress overlay on it)
    contains one of `words` (and differs from `changed_from` when given); returns it."""
    selector = f"#{elem_id} [data-testid=markdown]"
    page.wait_for_function(
        """([selector, words, before]) => {
            const node = document.querySelector(selector);
            return node !== null && node.innerText !== before
                && words.some(word => node.innerText.includes(word));
        }""",
        arg=[selector, list(words), changed_from],
        timeout=timeout,
    )
    return str(page.locator(selector).inner_text())


def set_number(page: Any, elem_id: str, value: float, *, attempts: int = 4) -> None:
    """Type `value` into the number box of a slider or number widget, and wait until the
    box shows it.

    A widget inside an accordion that has just been opened may still be mounting: a
    value typed then is replaced by the widget's default when it mounts, so the value is
    typed again until it stays.
    """
    selector = f"#{elem_id} input[type=number], #{elem_id} textarea"
    box = page.locator(selector).first
    for attempt in range(attempts):
        box.fill(f"{value:g}")
        box.press("Enter")
        box.blur()
        try:
            # the widget keeps (or clamps to) what it will send with the next event
            page.wait_for_function(
                "([selector, value]) => "
                "Number(document.querySelector(selector).value) === value",
                arg=[selector, value],
                timeout=5_000,
            )
        except Exception:
            if attempt == attempts - 1:
                raise AssertionError(
                    f"{elem_id} shows {box.input_value()!r} after typing {value:g} "
                    f"{attempts} times"
                ) from None
            page.wait_for_timeout(500)
            continue
        page.wait_for_timeout(300)  # still there after the widget's own updates?
        if float(box.input_value() or "nan") == value:
            return
    raise AssertionError(f"{elem_id} did not keep {value:g}")


def pick(page: Any, elem_id: str, value: str, *, attempts: int = 3) -> None:
    """Choose `value` in dropdown `elem_id` from its list, or type it when the dropdown
    takes any value and does not list it.

    The value is typed key by key (Gradio's dropdown filters its list on key presses, not
    on `fill`'s input event), then the option gets a mousedown event of its own: a mouse
    click on an option races the list's repositioning after the page scrolls and can
    miss. The choice is checked and, on a busy machine, tried again.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    field = page.locator(f"#{elem_id} input").first
    options = page.locator("ul[role=listbox] li[role=option]")
    exact = re.compile(rf"^\s*(✓\s*)?{re.escape(value)}\s*$")
    seen: list[str] = []
    for _ in range(attempts):
        field.click()
        field.fill("")
        field.press_sequentially(value)
        choice = options.filter(has_text=exact).first
        with contextlib.suppress(PlaywrightTimeoutError):  # drawn after the last key press
            choice.wait_for(state="visible", timeout=5_000)
        if options.filter(has_text=exact).count():
            # the list selects on mousedown at the option's data-index; dispatching it
            # to the option itself cannot miss while the list repositions
            choice.dispatch_event("mousedown")
        else:  # not listed: a dropdown that takes any value keeps what was typed
            field.press("Enter")
        field.blur()
        try:
            page.wait_for_function(
                "([selector, value]) => document.querySelector(selector).value === value",
                arg=[f"#{elem_id} input", value], timeout=10_000,
            )
            return
        except PlaywrightTimeoutError:
            seen.append(str(field.input_value()))
    raise AssertionError(f"#{elem_id}: could not pick {value!r}; the box showed {seen}")


def fill(page: Any, elem_id: str, text: str) -> None:
    """Type `text` into the text box `elem_id`."""
    box = page.locator(f"#{elem_id} textarea, #{elem_id} input[type=text]").first
    box.fill(text)
    box.blur()


def download_audio(page: Any, elem_id: str) -> tuple[np.ndarray, int]:
    """The audio component `elem_id`'s file, fetched by the browser's session, decoded."""
    link = page.locator(f"#{elem_id} [data-testid=download-link]").first
    link.wait_for()
    href = link.get_attribute("href")
    assert href, f"#{elem_id} has no file"
    response = page.request.get(href)
    assert response.ok, f"{href}: HTTP {response.status}"
    data, rate = soundfile.read(io.BytesIO(response.body()), dtype="float32")
    return data, int(rate)


def job_id(page: Any, prefix: str) -> str:
    """The job id a panel (or the Convert tab) shows in `#{prefix}-job`."""
    return str(page.locator(f"#{prefix}-job input, #{prefix}-job textarea").first.input_value())


def run_job(page: Any, prefix: str, *, until: tuple[str, ...] = ("done", "Error", "failed",
            "cancelled"), timeout: int = STATUS_TIMEOUT_MS) -> str:
    """Press `#{prefix}-run`, wait for the new job's id, then for its status to show one of
    `until`; returns the status text."""
    before = job_id(page, prefix)
    page.locator(f"#{prefix}-run").click()
    page.wait_for_function(
        """([selector, before]) => {
            const node = document.querySelector(selector);
            return node !== null && node.value !== "" && node.value !== before;
        }""",
        arg=[f"#{prefix}-job input, #{prefix}-job textarea", before],
        timeout=timeout,
    )
    return wait_for_status(page, f"{prefix}-status", *until, timeout=timeout)
