"""The English term in parentheses at a glossary concept's first Chinese use (issue 24, item 6).

The rule (``utils.glossary_zh``): in one question-bank entry, its Chinese fields read in order, the
first use of a glossary concept's Chinese term is followed by the English term in full-width
brackets, ``情景（episode）``; later uses stay bare. First the rule on small texts, then the bank.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path


from utils.glossary import load_glossary, validate_entries
from utils.glossary_zh import (BANK_PATH, ZH_FIELD_ORDER, add_glosses, bank_entry_texts,
                               bank_gloss_problems, chinese_head, gloss_problems, term_uses)

REPO = Path(__file__).resolve().parents[1]


def _entry(term, chinese, **more):
    return dict(term=term, chinese=chinese, definition="d.", chapter="01_mapping", **more)


#: A small glossary with the overlaps the rule must handle.
MINI = validate_entries([
    _entry("meta-learning", "元学习", aliases=["learning to learn"]),
    _entry("meta-learner", "元学习器"),
    _entry("model-based meta-learning", "基于模型的元学习"),
    _entry("task", "任务"),
    _entry("task distribution", "任务分布"),
    _entry("episode", "情景（小样本任务）"),
    _entry("inner loop", "内循环"),
    _entry("ANIL", "ANIL（几乎无内循环）"),
    _entry("first-order MAML", "一阶MAML", aliases=["FOMAML"]),
    _entry("structured pruning", "结构化剪枝"),
    _entry("mode-seeking", "模式寻求"),
    _entry("prototypical network", "原型网络", aliases=["ProtoNet"]),
])


def kinds(texts):
    return [(p.kind, chinese_head(p.use.entry)) for p in gloss_problems(texts, MINI)]


# --------------------------------------------------------------------------- the rule
def test_first_use_needs_the_english_term_and_later_uses_stay_bare():
    assert kinds("情景（episode）是一个小任务。每个情景都重新编号。") == [("bare", "任务")]
    assert kinds("情景（episode）是一个小任务（task）。每个情景都重新编号。") == []
    assert kinds("情景是一个小任务（task）。") == [("bare", "情景")]
    # a later use glossed again is named too: the gloss belongs at the first use only
    assert kinds("情景（episode）……情景（episode）") == [("again", "情景")]


def test_the_english_may_be_an_alias_a_plural_or_differently_cased():
    assert kinds("元学习（learning to learn）") == []
    assert kinds("原型网络（ProtoNet）") == kinds("原型网络（Prototypical Networks）") == []
    assert kinds("一阶MAML（FOMAML）") == kinds("一阶 MAML（first-order MAML）") == []


def test_a_wrong_english_word_fails():
    assert kinds("情景（task）") == [("wrong", "情景")]
    assert kinds("任务（task distribution）") == [("wrong", "任务")], "the whole first clause is the name"
    problem = gloss_problems("情景（task）", MINI)[0]
    assert "episode" in str(problem) and "（task）" in str(problem)


def test_chinese_only_brackets_do_not_count_but_can_hold_the_english():
    assert kinds("情景（小样本任务）") == [("bare", "情景")]
    assert kinds("情景（episode，小样本任务）") == [], "the brackets are the gloss: 任务 inside is not a use"
    assert kinds("原型网络（prototypical network；Snell 等，2017）") == []
    assert kinds("原型网络（Snell 等，2017）") == [("wrong", "原型网络")]


def test_longest_term_first():
    assert kinds("元学习器（meta-learner）") == [], "元学习器 is not a use of 元学习"
    assert kinds("元学习器（meta-learner）和元学习") == [("bare", "元学习")]
    assert kinds("任务分布（task distribution）") == []
    # a term that a longer term starting inside it would cut does not count
    uses = term_uses("基于模型的元学习器", MINI)
    assert [u.entry.term for u in uses] == ["meta-learner"]


def test_a_longer_phrase_glossed_whole_introduces_its_term():
    assert kinds("无监督元学习（unsupervised meta-learning）……元学习") == []
    assert kinds("元学习（meta-learning）……无监督元学习（unsupervised meta-learning）") == [], \
        "the gloss of a longer phrase is not a repeat"
    assert kinds("无监督元学习（unsupervised-meta-learning）") == [("wrong", "元学习")]


def test_english_first_and_english_terms_need_nothing():
    assert kinds("N-way K-shot 的 episode（情景任务）是什么？") == [], "English, then its Chinese gloss"
    assert kinds("ANIL（几乎无内循环）只适应分类头。") == [], "ANIL is English; 内循环 inside is its gloss"
    assert kinds("ANIL 只适应分类头，内循环很短。") == [("bare", "内循环")]


def test_spaces_quotes_and_words_that_are_not_uses():
    assert kinds("“模式寻求”（mode-seeking）的") == [], "a closing quote may stand before the brackets"
    assert kinds("非结构化剪枝与结构化剪枝（structured pruning）") == [], "非结构化剪枝 names another concept"
    assert kinds("一阶 MAML 舍弃了什么") == [("bare", "一阶MAML")]


def test_the_unit_is_read_in_order_across_its_texts():
    texts = {"question_zh": "什么是元学习？", "model_answer_zh": "元学习（meta-learning）学到的是……"}
    assert [(p.where, p.kind) for p in gloss_problems(texts, MINI)] == [("question_zh", "bare"),
                                                                        ("model_answer_zh", "again")]
    fixed = add_glosses(list(texts.values()), MINI)
    assert fixed == ["什么是元学习（meta-learning）？", "元学习学到的是……"]
    assert gloss_problems(fixed, MINI) == []


def test_add_glosses_inserts_into_chinese_brackets_and_leaves_citations():
    assert add_glosses(["采样情景（小样本任务）。一阶 MAML 舍弃了"], MINI) == \
        ["采样情景（episode，小样本任务）。一阶 MAML（first-order MAML）舍弃了"]
    assert add_glosses(["原型网络（Snell 等，2017）"], MINI) == ["原型网络（Snell 等，2017）"]
    assert add_glosses(["条件（x）情景（episode，A）和情景（episode）"], MINI) == ["条件（x）情景（episode，A）和情景"]


def test_bank_entry_texts_follow_the_reading_order():
    raw = {"id": "x", "follow_up_zh": "c", "question_zh": "a", "extra_zh": "e", "model_answer_zh": "b",
           "common_wrong_answer_zh": "d", "question_en": "not Chinese"}
    assert list(bank_entry_texts(raw)) == [*ZH_FIELD_ORDER, "extra_zh"]


# --------------------------------------------------------------------------- the shipped bank and strings
def test_every_bank_entry_gives_the_english_term_at_first_use():
    """Every entry of utils/question_bank.json, every concept's first Chinese use (failed on the
    bank before issue 24: 232 first uses without the English term, 42 glosses repeated later)."""
    problems = bank_gloss_problems()
    lines = [f"{qid}: {p}" for qid, ps in problems.items() for p in ps]
    assert not lines, f"{len(lines)} problems:\n" + "\n".join(lines[:40])


def test_the_checker_sees_the_bank_and_add_glosses_has_nothing_left_to_do():
    bank = json.loads(BANK_PATH.read_text(encoding="utf-8"))
    glossary = load_glossary()
    uses = sum(len(term_uses(t, glossary)) for e in bank["entries"] for t in bank_entry_texts(e).values())
    assert uses > 500, f"only {uses} uses of glossary terms found in the bank: is the matcher broken?"
    for e in bank["entries"]:
        texts = list(bank_entry_texts(e).values())
        assert add_glosses(texts, glossary) == texts, e["id"]


def test_the_bank_glosses_in_full_width_brackets():
    """One bracket style: Chinese text writes 术语（term）, never 术语 (term)."""
    bank = json.loads(BANK_PATH.read_text(encoding="utf-8"))
    half = [(e["id"], m.group(0)) for e in bank["entries"] for t in bank_entry_texts(e).values()
            for m in re.finditer(r"[\u4e00-\u9fff][”’]?\s*\([A-Za-z][A-Za-z -]*\)", t)]
    assert not half, half


def _learner_strings():
    """Every string constant with Chinese characters in utils/ that is not a docstring."""
    out = []
    for path in sorted((REPO / "utils").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        out += [(f"{path.relative_to(REPO)}:{n.lineno}", n.value) for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
                and re.search(r"[\u4e00-\u9fff]", n.value)]
    return out


def test_chinese_strings_in_utils_follow_the_rule():
    strings = _learner_strings()
    assert len(strings) >= 10 and any("参考答案" in s for _, s in strings), "the scan missed the card labels"
    glossary = load_glossary()
    bad = [f"{where}: {p}" for where, s in strings for p in gloss_problems(s, glossary)]
    assert not bad, "\n".join(bad)
