"""Every finding code in one place: its default severity, what it means to a student, how to fix it.

Checks create findings by code (``findings.error("images.count", ...)``); a code not listed
here is refused when the finding is made, so a typo fails its test instead of reaching a
student. Reports show the explanation beside a finding's own message; a finding's own hint,
when it has one, is more specific than the default hint here. Codes are stable: a renamed
code stays in ``ALIASES``, so stored records and rubrics that name it still work.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    code: str
    severity: str  # the default: "error", "warning" or "info"
    explanation: str  # what it means, in a student's terms
    hint: str  # how to fix it


# (code, default severity, explanation, fix hint)
_TABLE = [
    (
        "submission.missing_artifact",
        "error",
        (
            "One of the files the assignment asks for was not found in your submission, so "
            "everything that depends on it could not be checked or graded."
        ),
        "hand in every file the assignment lists, named as it asks",
    ),
    (
        "submission.unexpected_file",
        "warning",
        (
            "A file in your submission did not match anything the assignment asks for and was not"
            " graded. Check its name and format."
        ),
        "remove files the assignment does not ask for, or name them as it asks",
    ),
    (
        "submission.not_given",
        "info",
        "You checked only some of the files; the others were not part of this check.",
        "check the whole submission folder before you hand it in",
    ),
    (
        "submission.optional_absent",
        "info",
        "An optional file was not handed in; nothing is deducted for it.",
        "hand it in if you want it looked at",
    ),
    (
        "zip.not_a_zip",
        "error",
        (
            "The file named as a zip is not a zip archive (it may be a RAR, 7z or tar file, or a "
            "renamed file)."
        ),
        "make a real .zip with your system's Compress / Send to compressed folder, or zip -r",
    ),
    (
        "zip.corrupt",
        "error",
        "The zip archive is damaged and cannot be read.",
        "zip the files again and check that the archive opens on your computer",
    ),
    (
        "zip.truncated",
        "error",
        "The zip archive ends early: the upload or the copy was cut off.",
        "zip the files again and upload the whole file",
    ),
    (
        "zip.empty",
        "error",
        "The zip or folder holds no files.",
        "include the files the assignment asks for",
    ),
    (
        "zip.encrypted",
        "error",
        "Password-protected entries cannot be read by the grader.",
        "zip the files again without a password",
    ),
    (
        "zip.bomb",
        "error",
        "An entry expands to far more data than its compressed size (a zip bomb); it was refused.",
        "zip your real files only; images barely compress",
    ),
    (
        "zip.too_large",
        "error",
        "The files would take more space than the assignment allows once extracted.",
        "hand in only what the assignment asks for",
    ),
    (
        "zip.entry_too_large",
        "error",
        "One file in the zip is larger than any file the assignment needs.",
        "remove large files that are not part of the assignment",
    ),
    (
        "zip.too_many_entries",
        "error",
        "The zip holds more entries than the assignment allows.",
        "hand in only the files the assignment asks for",
    ),
    (
        "zip.bad_name",
        "error",
        "An entry's name cannot be a file name (empty, too long, or holding a NUL byte).",
        "give the files short, plain names and zip them again",
    ),
    (
        "zip.symlink",
        "error",
        "The zip holds symbolic links; links are never followed.",
        "put the files themselves in the zip, not links to them",
    ),
    (
        "zip.special_file",
        "error",
        "The zip holds device files, FIFOs or sockets.",
        "include only regular files",
    ),
    (
        "zip.unsupported_compression",
        "error",
        "An entry uses a compression method the grader cannot read (e.g. Deflate64, PPMd, AES).",
        "zip with the standard Deflate method (the default of most tools)",
    ),
    (
        "zip.bad_crc",
        "error",
        "An entry's data does not match its checksum: the archive is damaged.",
        "zip the files again and upload the whole file",
    ),
    (
        "zip.corrupt_entry",
        "error",
        "An entry's data is damaged and could not be extracted.",
        "zip the files again and upload the whole file",
    ),
    (
        "zip.size_mismatch",
        "error",
        "An entry's real size differs from the size its header declares.",
        "zip the files again with a standard tool",
    ),
    (
        "zip.duplicate_name",
        "error",
        "Two entries in the zip have the same name; only the first was kept.",
        "zip each file once",
    ),
    (
        "zip.case_collision",
        "error",
        (
            "Two entries differ only in upper/lower case; on many systems they would overwrite "
            "each other."
        ),
        "rename one of them",
    ),
    (
        "zip.path_conflict",
        "error",
        "An entry's path passes through a name that is also a file.",
        "zip a plain folder structure",
    ),
    ("zip.unreadable", "error", "An entry could not be read.", "zip the files again"),
    (
        "zip.name_encoding",
        "warning",
        (
            "Some names were stored without UTF-8 and were read with a legacy code page; they may"
            " look wrong."
        ),
        "zip with a tool that stores UTF-8 names (7-Zip, macOS Compress, zip on Linux)",
    ),
    (
        "zip.nested_zip",
        "warning",
        "The archive holds another zip inside it; inner zips are not opened.",
        "put the files themselves in the zip, not another zip",
    ),
    (
        "zip.junk",
        "error",
        (
            "The zip contains operating-system leftovers such as __MACOSX/ or .DS_Store. Zip the "
            "files from a terminal (zip -r out.zip . -x '.*' -x '__MACOSX/*') or remove them."
        ),
        "zip from a terminal without them: zip -r -X out.zip . -x '.*' -x '__MACOSX/*'",
    ),
    (
        "zip.wrapping_folder",
        "error",
        (
            "The files are inside a folder in the zip, but the assignment asks for the files at "
            "the top level. Zip the files themselves, not the folder that holds them."
        ),
        "zip the files themselves, not the folder that holds them",
    ),
    (
        "zip.path_traversal",
        "error",
        (
            "An entry in the zip has a path that points outside the extraction folder (such as "
            "'../x' or an absolute path). Such entries are never extracted."
        ),
        (
            "zip from inside your folder so every path is relative: cd my_folder && zip -r "
            "../submission.zip ."
        ),
    ),
    (
        "images.count",
        "error",
        (
            "The number of images in your zip is not the number the assignment asks for. FID "
            "depends on the number of images, so a different count makes your score incomparable."
        ),
        "generate exactly the number of images the assignment asks for",
    ),
    (
        "images.names",
        "error",
        (
            "Image files must be named exactly as the assignment says (for example 00001.png to "
            "10000.png). Names that do not fit the pattern are not counted as your images."
        ),
        "name the files exactly as the assignment says, e.g. 00001.png ... 10000.png",
    ),
    (
        "images.missing",
        "error",
        (
            "Some of the expected file names are not in your submission. Every name in the "
            "assignment's sequence must be present, with no gaps."
        ),
        "generate and include every numbered image",
    ),
    (
        "images.unexpected",
        "error",
        (
            "The set holds files the assignment does not ask for. Submit only the images, with no"
            " other files beside them."
        ),
        "remove files that are not part of the image set",
    ),
    (
        "images.subdirectory",
        "error",
        "The images must sit at the top level of the zip, not in folders inside it.",
        "put all images at the top level of the zip",
    ),
    (
        "images.not_image",
        "error",
        "A file in the image set is not an image at all. Only image files belong in the set.",
        "include only image files in the image set",
    ),
    (
        "images.empty",
        "error",
        "A file in the image set is empty (0 bytes); it was probably not written.",
        "check that your sampler really writes the images",
    ),
    (
        "images.format",
        "error",
        (
            "A file is not stored in the required image format (a file's content decides, not its"
            " extension): save with the right format, e.g. image.save(path, 'PNG')."
        ),
        "save with the right format, e.g. image.save(path, 'PNG')",
    ),
    (
        "images.size",
        "error",
        (
            "The images have the wrong width or height. Save them at exactly the size the "
            "assignment asks for, without resizing or cropping."
        ),
        "save the images at exactly the size the assignment asks for",
    ),
    (
        "images.mode",
        "error",
        (
            "The images have the wrong colour mode (for example greyscale 'L' or 'RGBA' where RGB"
            " is required). Convert them before saving, e.g. image.convert('RGB') in Pillow."
        ),
        "convert before saving, e.g. image.convert('RGB')",
    ),
    (
        "images.corrupt",
        "error",
        "A file could not be decoded as an image; it may be truncated or damaged.",
        "save the images again and check that each one opens",
    ),
    (
        "images.duplicates",
        "error",
        (
            "Some images are byte-for-byte identical. Identical samples usually mean the same "
            "noise or seed was reused, which also lowers diversity and worsens FID."
        ),
        "sample each image from its own noise",
    ),
    (
        "image.corrupt",
        "error",
        "The picture could not be decoded; it may be truncated or damaged.",
        "save it again and check that it opens",
    ),
    (
        "image.format",
        "error",
        "The picture is not stored in an accepted format (the content decides, not the extension).",
        "save it as PNG or JPEG",
    ),
    (
        "image.size",
        "error",
        "The picture does not have the size the assignment asks for.",
        "save it at the size the assignment asks for",
    ),
    (
        "image.too_large",
        "error",
        "The picture declares more pixels than any figure needs; it was not opened.",
        "save a normal-sized figure",
    ),
    ("document.empty", "error", "The document is empty.", "hand in the document with its content"),
    (
        "document.format",
        "error",
        (
            "The document is not in the format the assignment asks for (for example a Word file, "
            "or a file renamed to .pdf, where a PDF is required)."
        ),
        "export the document as a PDF (File > Export / Save as PDF) and hand in that file",
    ),
    (
        "document.unreadable",
        "error",
        (
            "The PDF does not open: it is damaged, cut off, password-protected or has no pages, "
            "so it cannot be read or graded."
        ),
        "export the PDF again, check that it opens without a password, and hand in that file",
    ),
    (
        "document.too_large",
        "error",
        "The document is larger than the assignment allows.",
        "compress images in the document or hand in a smaller file",
    ),
    (
        "source.empty",
        "error",
        "The source code archive holds no files.",
        "zip your code and readme",
    ),
    (
        "source.no_readme",
        "error",
        (
            "The source zip has no readme. Add one (.md, .txt or .pdf) that says how to set up "
            "the environment and how to run your code."
        ),
        "add a readme (.md, .txt or .pdf) saying how to create the environment and run the code",
    ),
    (
        "source.no_code",
        "error",
        "No source files were found in the source code archive.",
        "include your .py or .ipynb files",
    ),
    (
        "source.forbidden_file",
        "error",
        (
            "The source zip holds a file that must not be submitted, such as model weights or a "
            "data set. Submit code only; the assignment says what may be included."
        ),
        "the source zip must not contain model weights or the data set; remove them",
    ),
    (
        "source.too_large",
        "error",
        "The source code is larger than the assignment allows; it probably holds data or weights.",
        "hand in code and readme only",
    ),
    (
        "source.notebook",
        "error",
        (
            "The assignment asks for your code as .py files, not Jupyter notebooks. Develop in a "
            "notebook if you like, but convert it before you hand it in."
        ),
        "convert each notebook: jupyter nbconvert --to script NOTEBOOK.ipynb, then zip the .py files",
    ),
    (
        "source.forbidden_import",
        "error",
        (
            "Your code imports a package that is not on the assignment's list of allowed packages. "
            "Only those, the Python standard library and your own modules may be used, and the "
            "TA's environment has nothing else."
        ),
        "use only the packages the assignment lists; remove the import or rewrite that part",
    ),
    (
        "source.pretrained_weights",
        "error",
        (
            "Your code loads published (pretrained) weights: a from_pretrained call, torch.hub, a "
            "weights download, or a pretrained= / weights= argument that names published weights. "
            "The assignment asks you to train from scratch. If it is a function of your own with "
            "the same name, a TA will clear this."
        ),
        "train the model from scratch: remove the loading (e.g. weights=None, pretrained=False)",
    ),
    (
        "source.unparsable",
        "warning",
        (
            "A code file could not be read as Python (a syntax error, code for another Python "
            "version, or a notebook that is not valid JSON), so the checks of what it imports and "
            "loads could not look inside it."
        ),
        "make sure every file runs: python -m py_compile FILE.py; save notebooks from Jupyter",
    ),
    (
        "grid.unreadable",
        "error",
        "The process image could not be read.",
        "save the grid again as a PNG",
    ),
    (
        "grid.format",
        "error",
        (
            "The process image is not in the required format; lossy JPEG changes the noise the "
            "check measures."
        ),
        "save with torchvision.utils.save_image(grid, 'process.png')",
    ),
    (
        "grid.too_large",
        "error",
        "The process image declares far more pixels than an 8x8 grid of tiles.",
        "save the grid made by make_grid, not an enlarged copy",
    ),
    (
        "grid.layout",
        "error",
        (
            "The process image does not have the expected grid layout (rows x columns of tiles "
            "with the make_grid padding). Save the grid made by torchvision.utils.make_grid with "
            "the number of rows and columns the assignment gives."
        ),
        "build the grid with torchvision.utils.make_grid(x, nrow=8) from 64 tiles",
    ),
    (
        "grid.padding",
        "warning",
        "The padding between tiles is not one the assignment expects.",
        "use make_grid's default padding (2) or padding=0",
    ),
    (
        "grid.transposed",
        "error",
        "Rows and columns are swapped: each row must be one sample, left to right in time.",
        "stack the snapshots so that each row is one sample (e.g. transpose before make_grid)",
    ),
    (
        "grid.start_not_noise",
        "error",
        "The first column should be pure noise (the start of sampling).",
        "save x_T, the starting noise, as the first snapshot",
    ),
    (
        "grid.end_not_clean",
        "error",
        "The last column should be the finished image.",
        "save the final x_0 as the last snapshot",
    ),
    (
        "grid.reversed",
        "error",
        (
            "The rows run the wrong way: they should start from pure noise and end with a clean "
            "image, in the direction the assignment gives."
        ),
        "put the noise on the left and the final image on the right",
    ),
    (
        "grid.not_monotonic",
        "error",
        (
            "Along a row the noise should only go down, step by step. Check that the snapshots "
            "are saved in order of the diffusion steps."
        ),
        "save the snapshots in the order of the diffusion steps",
    ),
    (
        "grid.column_order",
        "error",
        "The columns are not in time order: the noise does not fall steadily from left to right.",
        "save the snapshots in the order of the diffusion steps",
    ),
    (
        "grid.row_all_noise",
        "error",
        "A row is noise from start to end: that sample never denoised.",
        "check the sampling loop for that row",
    ),
    (
        "grid.row_all_clean",
        "error",
        "A row is clean from start to end: it does not show the process from noise.",
        "start each row from pure noise",
    ),
    (
        "grid.row_blank",
        "error",
        "A row is blank (one flat colour).",
        "check that every row holds a sample",
    ),
    (
        "grid.rows_repeated",
        "error",
        (
            "Several rows of the process image look the same. Each row should be a separate "
            "sample, started from its own noise."
        ),
        "start each of the 8 rows from its own noise",
    ),
    (
        "grid.not_digits",
        "warning",
        "The final images do not look like handwritten digits to the reference classifier.",
        "check your model's samples",
    ),
    (
        "grid.odd_digits",
        "warning",
        "Some final images look unlike digits to the reference classifier.",
        "check your model's samples",
    ),
    (
        "grid.digits_inverted",
        "warning",
        "The final digits look inverted (dark on light), unlike MNIST.",
        "keep MNIST's white digits on a black background",
    ),
    (
        "sandbox.no_source",
        "error",
        "The sampler could not run: there is no usable source code.",
        "hand in a readable source zip",
    ),
    (
        "sandbox.weights_missing",
        "error",
        "The sampler's weights are not where the assignment says they must be.",
        "put the trained weights at the path the assignment gives, inside the source zip",
    ),
    (
        "sandbox.exit_code",
        "error",
        "The sampler stopped with an error.",
        "run your sampler command on a clean machine and read its log",
    ),
    (
        "sandbox.timeout",
        "error",
        "The sampler ran past the time limit and was stopped.",
        "make sampling fit the time limit (batch it, use the GPU)",
    ),
    ("sandbox.memory", "error", "The sampler ran out of memory.", "sample in smaller batches"),
    (
        "sandbox.pids",
        "error",
        "The sampler started more processes than allowed.",
        "do not start many processes or threads",
    ),
    (
        "sandbox.pid",
        "error",
        "The sampler killed a process it must not kill.",
        "do not kill processes outside your own",
    ),
    (
        "sandbox.no_output",
        "error",
        "The sampler wrote no files to its output folder.",
        "write the images to the folder given as {output}",
    ),
    (
        "sandbox.output_too_large",
        "error",
        "The sampler wrote more data than its output folder may hold.",
        "write only the images asked for",
    ),
    (
        "sandbox.too_many_files",
        "error",
        "The sampler wrote more files than allowed.",
        "write only the images asked for",
    ),
    (
        "sandbox.symlink_in_output",
        "error",
        "The sampler wrote symbolic links; they are never followed.",
        "write image files, not links",
    ),
    (
        "sandbox.special_file_in_output",
        "error",
        "The sampler wrote special files (FIFOs, devices).",
        "write image files only",
    ),
    (
        "sandbox.log_truncated",
        "info",
        "The sampler printed more than the log keeps; the middle was cut.",
        "print less",
    ),
    (
        "sandbox.audit_no_images",
        "error",
        "The re-run sampler produced no images to compare with the uploaded ones.",
        "make the sampler write the images",
    ),
    (
        "sandbox.audit_mismatch",
        "error",
        "The uploaded images differ from what the submitted code produces with the same seed.",
        "upload the images your submitted code makes",
    ),
    (
        "sandbox.audit_unmatched",
        "error",
        "Some uploaded images have no counterpart among the re-run sampler's images.",
        "upload the images your submitted code makes",
    ),
    (
        "sandbox.audit_fid",
        "error",
        "The re-run sampler's images are far (in FID) from the uploaded ones.",
        "upload the images your submitted code makes",
    ),
    (
        "evaluator.count",
        "error",
        (
            "The number of images for a label file is not the number of label sets in it, so the "
            "evaluator cannot tell which image belongs to which label set and accuracy is not "
            "computed."
        ),
        "hand in one image per label set: 0.png ... N-1.png for a file of N label sets",
    ),
    (
        "evaluator.names",
        "error",
        (
            "Image i of a label file must be named i.png; some names are missing or do not belong"
            " to a label set, so accuracy is not computed."
        ),
        "name the images 0.png, 1.png, ... in the order of the label file",
    ),
    (
        "evaluator.ambiguous",
        "error",
        (
            "The same image name appears more than once (in different folders), so it is not "
            "clear which one belongs to the label set."
        ),
        "keep one image per name",
    ),
    (
        "evaluator.size",
        "error",
        (
            "The evaluator takes images of one size only; images of another size are not resized "
            "for you, so accuracy is not computed."
        ),
        "save the images at the size the assignment asks for",
    ),
    (
        "evaluator.mode",
        "warning",
        "Some images are not RGB; they were converted to RGB before the evaluator saw them.",
        "save the images as RGB",
    ),
    (
        "evaluator.unreadable",
        "error",
        "Some images could not be opened, so accuracy is not computed.",
        "save these images again and check that they open",
    ),
    (
        "prerequisite.missing",
        "error",
        (
            "This work is graded only if an earlier part (for example a progress report) was "
            "handed in on time; it was not found, so this work is not graded."
        ),
        "talk to the TA if you handed the earlier part in",
    ),
    (
        "metric.failed",
        "error",
        "A metric could not be computed for this submission.",
        "the TA will look at it; check your images with grader check",
    ),
    (
        "metric.warning",
        "warning",
        "A note on how to read a metric (for example FID from few images is biased upward).",
        "compare numbers only with numbers from the same number of images",
    ),
    (
        "grader.internal_error",
        "error",
        "Grading this submission crashed; the TA has the details.",
        "this is not necessarily your fault; the TA will look at it",
    ),
    (
        "executor.task_failed",
        "error",
        (
            "The cluster stopped the task grading this submission (cancelled, out of memory, node"
            " failure or preemption) before it finished; nothing was graded yet."
        ),
        "not your doing: the TA runs the grading again",
    ),
    (
        "executor.timeout",
        "error",
        (
            "Grading this submission took longer than the time limit the TA set on the cluster; "
            "nothing was graded yet."
        ),
        "not your doing: the TA raises the time limit and runs the grading again",
    ),
    (
        "integrity.training_copies",
        "warning",
        (
            "Many of your images are (near) copies of training images: each is much closer to one"
            " training image than to any other. A TA will look at them before grades are final; a"
            " model can reproduce training images, so this is a question, not a verdict."
        ),
        "hand in images your model generates, not training images or edited copies of them",
    ),
    (
        "integrity.mode_collapse",
        "warning",
        (
            "Your images are not varied enough: many repeat (near-duplicates) or most show the "
            "same class, which is how a collapsed generator looks."
        ),
        (
            "check your sampler draws fresh noise for every image and that the model covers every"
            " class"
        ),
    ),
    (
        "integrity.shared_set",
        "warning",
        (
            "Many of your images also appear, identical or lightly edited, in another student's "
            "submission. A TA will look at both before grades are final."
        ),
        "hand in only images your own model generated",
    ),
    (
        "images.not_regular",
        "error",
        "Some entries of the image set are links, folders or special files, not images; they were not read.",
        "put the image files themselves in the set",
    ),
    (
        "images.file_too_large",
        "error",
        "A file is far larger than any allowed image could be; it was not read.",
        "save the images at the size the assignment asks for",
    ),
    (
        "images.decompression_bomb",
        "error",
        "An image declares more pixels than allowed (a decompression bomb); it was refused unread.",
        "save the images at the size the assignment asks for",
    ),
    (
        "images.unreadable",
        "error",
        "A file of the image set could not be read from disk.",
        "save the images again and check that each one opens",
    ),
]

CODES: dict[str, Code] = {row[0]: Code(*row) for row in _TABLE}

# Old code -> current code. Globs allowed on the old side ("metric.*.warning": a metric's
# warnings once carried the metric's name).
ALIASES: dict[str, str] = {"metric.*.warning": "metric.warning"}


def canonical(code: str) -> str:
    """The current name of a code (itself unless it was renamed)."""
    if code in CODES:
        return code
    for old, new in ALIASES.items():
        if fnmatch.fnmatchcase(code, old):
            return new
    return code


def lookup(code: str) -> Code:
    """The catalogue entry of a code; KeyError names the code when it is not catalogued."""
    entry = CODES.get(canonical(code))
    if entry is None:
        raise KeyError(f"finding code {code!r} is not in grader/codes.py; add it there")
    return entry


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def resolve_pattern(pattern: str) -> str:
    """A code or glob a rubric (or a TA override) names, as findings carry it: a renamed code
    becomes its current name. ValueError, naming the nearest catalogued codes, when it is not
    a catalogued code or alias, or a glob that matches no catalogued code (a rule that could
    never apply).

    One catalogue for every rubric: a code counts whichever artifacts and metrics a rubric
    uses (a rule on the codes of a kind the rubric does not use matches nothing, as a rule
    on a problem that never occurs does); only names the catalogue lacks are refused.
    """
    current = canonical(pattern)
    if current in CODES:
        return current
    if _is_glob(pattern) and any(fnmatch.fnmatchcase(code, pattern) for code in CODES):
        return pattern
    what = (
        "a glob matching no finding code in grader/codes.py"
        if _is_glob(pattern)
        else "not a finding code in grader/codes.py"
    )
    near = nearest(pattern)
    raise ValueError(f"{what}; did you mean {' or '.join(near)}?" if near else what)


def nearest(pattern: str, n: int = 3) -> list[str]:
    """Catalogued codes and families (``images.*``) spelled closest to ``pattern``."""
    families = sorted({code.split(".", 1)[0] + ".*" for code in CODES})
    return difflib.get_close_matches(pattern, [*CODES, *families], n=n, cutoff=0.6)
