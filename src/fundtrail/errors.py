"""The exceptions FundTrail raises on purpose, all under `FundTrailError`.

Each message names the value that failed and what to do next, so the CLI can show it as it is.
Classes also inherit the matching builtin (`ValueError`, `LookupError`), so code that already
catches those keeps working.
"""

from collections.abc import Sequence

MISSING = object()
"""Placeholder for `SpecError.value` when a required field is absent."""


class FundTrailError(Exception):
    """Base of every error the library raises on purpose."""


class SpecError(FundTrailError, ValueError):
    """An invalid value in a grant spec or on the command line.

    `str()` reads "FIELD: invalid value VALUE: PROBLEM. FIX", or "FIELD: PROBLEM. FIX" when
    the value is `MISSING`.
    """

    def __init__(self, field: str, value: object, problem: str, fix: str):
        super().__init__(field, value, problem, fix)
        self.field = field
        """Where the value sits, as a path such as `milestones[1].amount`."""
        self.value = value
        """The invalid value as the user wrote it, or `MISSING`."""
        self.problem = problem
        """What is wrong with the value, without a final full stop."""
        self.fix = fix
        """What the user should do, as one or more full sentences."""

    def __str__(self) -> str:
        if self.value is MISSING:
            return f"{self.field}: {self.problem}. {self.fix}"
        return f"{self.field}: invalid value {self.value!r}: {self.problem}. {self.fix}"


class FileError(FundTrailError):
    """A file that is missing, unreadable or empty, such as an evidence file or a grant spec."""

    def __init__(self, path: object, problem: str, fix: str):
        super().__init__(path, problem, fix)
        self.path = path
        """The path as the caller gave it."""
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}. {self.fix}"


class PrivacyError(FundTrailError, ValueError):
    """Text bound for the chain that looks like it contains personal data.

    Everything written to a public chain stays readable by anyone and cannot be deleted, so
    personal data must never get there. The error stores only a masked excerpt of the text, not
    the text itself, so that logging or printing the error does not leak it either.
    """

    def __init__(self, field: str, value: str, kinds: list[str]):
        # Imported here because privacy.py imports this module.
        from fundtrail.privacy import mask_personal_data

        self.field = field
        """The field whose text was checked, such as `terms.uri`."""
        self.kinds = list(kinds)
        """The kinds of personal data found, such as "e-mail address"."""
        self.excerpt = _shorten(mask_personal_data(value))
        """The checked text with the personal data masked, shortened for display."""
        super().__init__(field, self.excerpt, self.kinds)

    def __str__(self) -> str:
        return (
            f"{self.field}: found what looks like {_join(self.kinds)} in {self.excerpt!r}. "
            "This text is published on-chain, where anyone can read it and nobody can delete "
            "it. Remove the personal data, or pass --allow-personal-data if it is definitely "
            "not personal data."
        )


class SpecErrors(SpecError):
    """Every problem found in one grant spec, raised together so the user can fix all at once.

    It is a `SpecError`, so callers that catch `SpecError` also catch it. The single problems
    are in `errors`, in the order of the file.
    """

    def __init__(self, source: str, errors: Sequence[SpecError | PrivacyError]):
        count = len(errors)
        noun = "problem" if count == 1 else "problems"
        super().__init__(
            source,
            MISSING,
            f"{count} {noun} found",
            "Fix every problem listed, then run the command again.",
        )
        self.args = (source, list(errors))
        self.errors = list(errors)
        """The single problems, each a `SpecError` or a `PrivacyError`."""

    def __reduce__(self):
        return (type(self), self.args)

    def __str__(self) -> str:
        lines = [f"{self.field}: {self.problem}. {self.fix}"]
        lines.extend(f"  - {error}" for error in self.errors)
        return "\n".join(lines)


class DeploymentError(FundTrailError, LookupError):
    """No usable deployment record, for example none for the network in use.

    The message names the network, the deployments file and the command that fixes it, such as
    `fundtrail deploy --network ...`.
    """


def _shorten(text: str, limit: int = 80) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def _join(words: Sequence[str]) -> str:
    """Join with commas and a final "and", with "an" or "a" before each word."""
    with_articles = [("an " if word[0].lower() in "aeiou" else "a ") + word for word in words]
    if len(with_articles) <= 1:
        return "".join(with_articles)
    return ", ".join(with_articles[:-1]) + " and " + with_articles[-1]
