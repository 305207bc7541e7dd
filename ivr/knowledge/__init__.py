"""Knowledge questions keyed in on the phone (date of birth, last digits of a document...)."""

from ivr.knowledge.catalogue import CATALOGUE, AnswerFormatError, Question, normalise_date, question
from ivr.knowledge.importer import CsvImportError, ImportReport, RowError, import_customers_csv
from ivr.knowledge.policy import KnowledgeOutcome, KnowledgePolicy, NotEnoughQuestions
from ivr.knowledge.service import KnowledgeService, default_hasher

__all__ = [
    "CATALOGUE",
    "AnswerFormatError",
    "CsvImportError",
    "ImportReport",
    "KnowledgeOutcome",
    "KnowledgePolicy",
    "KnowledgeService",
    "NotEnoughQuestions",
    "Question",
    "RowError",
    "default_hasher",
    "import_customers_csv",
    "normalise_date",
    "question",
]
