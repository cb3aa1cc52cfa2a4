"""Small page actions shared by the browser tests (Playwright, sync API)."""

from __future__ import annotations

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


def set_number(page: Any, elem_id: str, value: float) -> None:
    """Type `value` into the number box of a slider or number widget."""
    box = page.locator(f"#{elem_id} input[type=number], #{elem_id} textarea").first
    box.fill(f"{value:g}")
    box.press("Enter")
    box.blur()
    # the widget keeps (or clamps to) what it will send with the next event
    page.wait_for_function(
        "([selector, value]) => Number(document.querySelector(selector).value) === value",
        arg=[f"#{elem_id} input[type=number], #{elem_id} textarea", value],
    )


def pick(page: Any, elem_id: str, value: str, *, attempts: int = 3) -> None:
    """Choose `value` in dropdown `elem_id` from its list, or type it when the dropdown
    takes any value and does not list it.

    Uses the keyboard only: Gradio's dropdown filters its list on key presses (not on
    `fill`'s input event), and a click on an option of a long list races the list's
    repositioning after the page scrolls (the click then misses and the choice is lost).
    The choice is checked and, on a busy machine, tried again.
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
        if options.filter(has_text=exact).count():
            # move the highlight onto the exact choice (the filter may list longer names)
            for _ in range(options.count() + 1):
                active = page.evaluate(
                    "() => document.querySelector('ul[role=listbox] li.active')"
                    "?.getAttribute('aria-label') ?? null"
                )
                if active == value:
                    break
                field.press("ArrowDown")
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
