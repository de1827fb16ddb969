"""Tables to XLSX (openpyxl) and CSV bytes; a cell that a spreadsheet would run as a formula is quoted."""
from __future__ import annotations

import csv
import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

Table = tuple[str, list[str], list[list[Any]]]  # (title, headers, rows)


def safe(value: Any) -> Any:
    """Text starting with = + - @ would run as a formula in a spreadsheet: prefix a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value


def xlsx(tables: list[Table]) -> bytes:
    """One sheet per table, the headers in bold on the first row."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    book = Workbook()
    book.remove(book.worksheets[0])  # the empty sheet a new workbook starts with
    for title, headers, rows in tables:
        sheet = book.create_sheet(_sheet_name(title, book.sheetnames))
        sheet.append(headers)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append([safe(v) for v in row])
        for i, header in enumerate(headers, start=1):
            sheet.column_dimensions[sheet.cell(1, i).column_letter].width = max(10, min(40, 2 * len(str(header)) + 4))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsx_in_child(tables: list[Table]) -> bytes:
    """`xlsx` built in a spawned child process that exits afterwards: openpyxl keeps every cell
    of a workbook as an object until it is saved (the annual report of a unit at 100k: ~20 MB
    more in the server for good, bench/rss.py; issue 10: RSS ≤ 250 MB whatever was asked). The
    child imports only this module and openpyxl, and gets the tables as plain values."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(xlsx, tables).result()


def _sheet_name(title: str, taken: list[str]) -> str:
    name = "".join(c for c in title if c not in "[]:*?/\\")[:28] or "Sheet"
    return name if name not in taken else f"{name[:25]}{len(taken)}"


def csv_bytes(headers: list[str], rows: list[list[Any]]) -> bytes:
    """UTF-8 with BOM so that Excel opens the Chinese columns correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows([[safe(v) for v in row] for row in rows])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
