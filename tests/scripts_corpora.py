"""Small parallel corpora, English to one language per script family, written by the tests
(never a real corpus): 6 subjects x 6 verbs x 6 places = 216 distinct pairs a language, each
target in its own script with what makes that script hard for a pipeline built on Latin
text: no spaces (zh, ja, th), right to left with a directional mark in every sentence (ar),
ZERO WIDTH NON-JOINER inside every verb (fa), joiners after a virama (hi), emoji with a
variation selector or a ZWJ sequence (el, ru). The sentences need not be good translations;
their scripts must be right."""

from __future__ import annotations

from pathlib import Path

ZWNJ, ZWJ, RLM, VS16 = "\u200c", "\u200d", "\u200f", "\ufe0f"
HEART, CODER = f"\u2764{VS16}", f"\U0001f469{ZWJ}\U0001f4bb"  # an emoji with VS16; a ZWJ sequence

ENGLISH = (("The dog", "The cat", "The child", "The woman", "The man", "The bird"),
           ("runs", "sleeps", "eats", "plays", "sings", "waits"),
           ("in the park", "at home", "in the garden", "by the river", "in the city", "at school"))

# language -> (subjects, verbs, places, template over s, v, p)
LANGUAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], str]] = {
    "zh": (("狗", "猫", "孩子", "女人", "男人", "鸟"), ("跑", "睡觉", "吃饭", "玩", "唱歌", "等"),
           ("公园里", "家里", "花园里", "河边", "城市里", "学校里"), "{s}在{p}{v}。"),
    "ja": (("犬", "猫", "子供", "女性", "男性", "鳥"), ("走ります", "寝ます", "食べます", "遊びます", "歌います", "待ちます"),
           ("公園", "家", "庭", "川のそば", "町", "学校"), "{s}は{p}で{v}。"),
    "ko": (("개는", "고양이는", "아이는", "여자는", "남자는", "새는"),
           ("달립니다", "잡니다", "먹습니다", "놉니다", "노래합니다", "기다립니다"),
           ("공원에서", "집에서", "정원에서", "강가에서", "도시에서", "학교에서"), "{s} {p} {v}."),
    "ar": (("الكلب", "القطة", "الطفل", "المرأة", "الرجل", "الطائر"), ("يركض", "ينام", "يأكل", "يلعب", "يغني", "ينتظر"),
           ("في الحديقة العامة", "في البيت", "في الحديقة", "عند النهر", "في المدينة", "في الشارع 5"),
           "{s} {v} {p}" + RLM + "."),  # RLM: the period stays at the end of a right-to-left line
    "fa": (("سگ", "گربه", "بچه", "زن", "مرد", "پرنده"),
           (f"می{ZWNJ}دود", f"می{ZWNJ}خوابد", f"می{ZWNJ}خورد", f"بازی می{ZWNJ}کند", f"آواز می{ZWNJ}خواند",
            f"صبر می{ZWNJ}کند"),
           ("در پارک", "در خانه", "در باغ", "کنار رودخانه", "در شهر", "در مدرسه"), "{s} {p} {v}."),
    "hi": (("कुत्ता", "बिल्ली", "बच्चा", "औरत", "आदमी", f"क्{ZWJ}षत्रिय"),
           ("दौड़ता है", "सोता है", "खाता है", "खेलता है", "गाता है", "इंतज़ार करता है"),
           ("पार्क में", "घर पर", "बगीचे में", "नदी के पास", "शहर में", f"स्{ZWNJ}कूल में"), "{s} {p} {v}।"),
    "th": (("สุนัข", "แมว", "เด็ก", "ผู้หญิง", "ผู้ชาย", "นก"), ("วิ่ง", "นอน", "กิน", "เล่น", "ร้องเพลง", "รอ"),
           ("ในสวนสาธารณะ", "ที่บ้าน", "ในสวน", "ริมแม่น้ำ", "ในเมือง", "ที่โรงเรียน"), "{s}{v}{p}"),
    "el": (("Ο σκύλος", "Η γάτα", "Το παιδί", "Η γυναίκα", "Ο άντρας", "Το πουλί"),
           ("τρέχει", "κοιμάται", "τρώει", "παίζει", "τραγουδάει", "περιμένει"),
           ("στο πάρκο", f"στο σπίτι {HEART}", "στον κήπο", "δίπλα στο ποτάμι", "στην πόλη", "στο σχολείο"),
           "{s} {v} {p}."),
    "ru": (("Собака", "Кошка", "Ребёнок", "Женщина", "Мужчина", "Птица"), ("бежит", "спит", "ест", "играет", "поёт", "ждёт"),
           ("в парке", "дома", "в саду", "у реки", "в городе", f"в школе {CODER}"), "{s} {v} {p}."),
}
# what each script family must keep through prepare, evaluate and translate
KEPT = {"ar": RLM, "fa": ZWNJ, "hi": ZWJ + ZWNJ, "el": VS16, "ru": ZWJ}
EVERY_TARGET = ("ar", "fa")  # families whose every target holds its mark: a trained model's output does too


def pairs(lang: str) -> list[tuple[str, str]]:
    """The 216 (English, ``lang``) pairs, in a fixed order."""
    subjects, verbs, places, template = LANGUAGES[lang]
    out = []
    for i, (s_en, s) in enumerate(zip(ENGLISH[0], subjects)):
        for j, (v_en, v) in enumerate(zip(ENGLISH[1], verbs)):
            for k, (p_en, p) in enumerate(zip(ENGLISH[2], places)):
                extra = {"el": f" {HEART}" if k == 1 else "", "ru": f" {CODER}" if k == 5 else ""}.get(lang, "")
                out.append((f"{s_en} {v_en} {p_en}.{extra}", template.format(s=s, v=v, p=p)))
    return out


def write_tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{s}\t{t}\n" for s, t in rows), encoding="utf-8")
    return path


def files_overrides(folder: Path, lang: str, *extra: str) -> list[str]:
    """``data=files`` on ``folder/<lang>.tsv`` (written here), en -> ``lang``, val and test carved."""
    write_tsv(folder / f"{lang}.tsv", pairs(lang))
    return ["data=files", f"data.dir={folder}", "data.src_lang=en", f"data.tgt_lang={lang}",
            f"data.train=[{lang}.tsv]", "data.val_size=20", "data.test_size=20", "data.vocab_size=400", *extra]
