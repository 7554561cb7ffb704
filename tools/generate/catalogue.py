"""Fixed vocabularies of the synthetic data generator: names, places, bill items, diagnoses.

Everything here is **illustrative** (not from the seeds) unless a line cites one: item codes are
made up in a readable `<kind>-<n>` form, prices are plausible county prices in yuan, diagnosis
codes are ICD-10 codes of common inpatient conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contracts.types import CareLocation, CatalogueClass

REGION_CODE = "500240"
"""Illustrative county: the towns F000 names (下路镇, 万朝镇, 马武镇, 中益乡, 大歇镇; F000 L4–L30) lie in
石柱土家族自治县 (Chongqing), GB/T 2260 code 500240. F000 itself does not name its county."""

OTHER_POOLS: dict[CareLocation, tuple[tuple[str, str], ...]] = {
    "in_province": (("500101", "万州区"), ("500103", "渝中区"), ("500106", "沙坪坝区")),
    "out_of_province": (("510107", "成都市"), ("420102", "武汉市"), ("110105", "北京市")),
}
"""Pool codes and place names of providers outside the county's pool (illustrative)."""

TOWNS = ("下路镇", "万朝镇", "马武镇", "中益乡", "大歇镇",  # F000 L27–L30
         "西沱镇", "黄水镇", "悦崃镇", "临溪镇", "沙子镇", "王场镇", "冷水镇", "桥头镇", "鱼池镇", "三河镇",
         "六塘乡", "三益乡", "王家乡", "河嘴乡", "枫木乡", "洗新乡", "龙沙镇", "沿溪镇", "黎场乡")
STREETS = ("南宾街道", "万安街道", "下路街道")
COUNTY_HOSPITALS = ("县人民医院", "县中医院", "县妇幼保健院", "县第二人民医院")

SURNAMES = ("谭", "马", "冉", "向", "秦", "陈", "刘", "李", "王", "张", "杨", "黄", "周", "吴", "罗", "何",
            "郑", "彭", "余", "熊", "谭", "马", "冉", "向", "秦", "陈", "刘", "李")
GIVEN_MALE = "伟强军平勇明华建国林波超浩宇俊杰涛斌鹏志文武忠福"
GIVEN_FEMALE = "芳娟敏静丽艳霞燕玲婷慧红梅兰琴秀英萍雪佳春桂"

Kind = Literal["bed", "nursing", "exam", "drug", "treatment", "hourly", "surgery", "material"]


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    catalogue_class: CatalogueClass
    unit: str
    price_fen: int
    kind: Kind


def _items(kind: Kind, prefix: str, rows: tuple[tuple[str, CatalogueClass, str, int], ...]) -> tuple[Item, ...]:
    return tuple(Item(f"{prefix}-{i:03d}", name, cls, unit, fen, kind)
                 for i, (name, cls, unit, fen) in enumerate(rows, 1))


BED_FEN = {1: 2_000, 2: 3_500, 3: 6_000}
"""Bed-day fee (床位费, class A) by hospital level, fen."""
NURSING_FEN = {1: 1_500, 2: 2_000, 3: 3_000}
"""Level-II nursing (Ⅱ级护理, class A) per day by hospital level, fen."""

BED = Item("BED-001", "床位费", "A", "日", 0, "bed")  # price by level
NURSING = Item("NUR-001", "Ⅱ级护理", "A", "日", 0, "nursing")  # price by level

EXAMS = _items("exam", "EXM", (
    ("血细胞分析(血常规)", "A", "次", 2_000), ("肝功能检测", "A", "次", 6_000), ("肾功能检测", "A", "次", 4_000),
    ("心电图检查", "A", "次", 2_500), ("胸部X线摄影(DR)", "A", "次", 7_000), ("C反应蛋白测定", "B", "次", 3_000),
    ("彩色多普勒超声检查", "B", "次", 15_000), ("CT平扫", "B", "次", 28_000), ("磁共振成像(MRI)平扫", "B", "次", 55_000),
))
DRUGS = _items("drug", "DRG", (
    ("0.9%氯化钠注射液(250ml)", "A", "瓶", 350), ("注射用头孢曲松钠(1g)", "A", "支", 1_280),
    ("阿莫西林胶囊(0.25g)", "A", "粒", 35), ("奥美拉唑肠溶胶囊(20mg)", "A", "粒", 120),
    ("硝苯地平缓释片(20mg)", "A", "片", 60), ("盐酸二甲双胍片(0.5g)", "A", "片", 25),
    ("注射用头孢呋辛钠(1.5g)", "B", "支", 1_860), ("左氧氟沙星氯化钠注射液(100ml)", "B", "瓶", 2_200),
    ("注射用泮托拉唑钠(40mg)", "B", "支", 2_550), ("阿托伐他汀钙片(20mg)", "B", "片", 280),
    ("低分子肝素钙注射液(4100IU)", "B", "支", 3_500), ("人血白蛋白(10g)", "B", "瓶", 38_000),
))
TREATMENTS = _items("treatment", "TRT", (
    ("静脉输液", "A", "次", 800), ("雾化吸入", "A", "次", 1_000), ("换药", "A", "次", 1_500),
    ("肌肉注射", "A", "次", 300), ("康复理疗", "B", "次", 4_000),
))
HOURLY = _items("hourly", "HRS", (("氧气吸入", "A", "小时", 300), ("心电监测", "A", "小时", 600)))
"""Time-billed items: at most 24 hours per day of stay (an audit rule checks it)."""
SURGERIES = _items("surgery", "SUR", (
    ("阑尾切除术", "A", "次", 90_000), ("剖宫产术", "A", "次", 120_000), ("腹腔镜下胆囊切除术", "B", "次", 220_000),
    ("经皮冠状动脉支架置入术", "B", "次", 450_000), ("人工髋关节置换术", "B", "次", 600_000),
))
ANAESTHESIA = Item("ANE-001", "全身麻醉", "A", "次", 60_000, "surgery")
MATERIALS_IN_POLICY = _items("material", "MAT", (
    ("冠状动脉药物洗脱支架", "B", "个", 70_000), ("人工髋关节假体", "B", "套", 700_000),
    ("一次性使用无菌手术包", "A", "个", 8_000),
))
OUT_OF_POLICY = _items("drug", "OOP", (
    ("注射用胸腺五肽(10mg)", "C", "支", 4_500), ("复方氨基酸注射液(18AA)", "C", "瓶", 3_800),
    ("一次性使用吻合器", "C", "把", 180_000), ("特需病房床位差价", "SELF", "日", 8_000),
    ("陪护床", "SELF", "日", 1_000), ("一次性护理包(自费)", "SELF", "个", 1_500),
))

DIAGNOSES_COMMON = ("J18.9", "J44.1", "J20.9", "I10", "E11.9", "K29.7", "A09.9", "N39.0", "I50.9", "I63.9")
DIAGNOSES_MEDIUM = ("I63.9", "I25.1", "K35.8", "K80.2", "O82.9", "S72.0", "J96.0", "I50.9", "K56.6")
DIAGNOSES_SEVERE = ("C34.9", "C16.9", "C22.0", "I21.9", "I61.9", "S06.5", "N18.5", "M16.9")
DIAGNOSES_SECONDARY = ("I10", "E11.9", "E78.5", "K76.0", "J44.9", "I25.1")
