"""Fixed vocabularies the generator draws from (names, places, products, notes)."""

from __future__ import annotations

# (display, ascii for e-mail local parts)
FIRST_NAMES = [
    ("Anna", "anna"), ("Ben", "ben"), ("Chloé", "chloe"), ("David", "david"), ("Emma", "emma"),
    ("François", "francois"), ("Greta", "greta"), ("Hiro", "hiro"), ("Isabel", "isabel"), ("Jonas", "jonas"),
    ("Zoë", "zoe"), ("Liam", "liam"), ("María", "maria"), ("Noah", "noah"), ("Olivia", "olivia"),
    ("Priya", "priya"), ("Quentin", "quentin"), ("Rosa", "rosa"), ("Søren", "soren"), ("Tomás", "tomas"),
    ("Yuki", "yuki"), ("Wei", "wei"), ("Sean", "sean"), ("Ayşe", "ayse"),
]
LAST_NAMES = [
    ("Müller", "mueller"), ("Smith", "smith"), ("O'Brien", "obrien"), ("García", "garcia"), ("Dubois", "dubois"),
    ("Rossi", "rossi"), ("Tanaka", "tanaka"), ("Nguyen", "nguyen"), ("Kowalski", "kowalski"), ("Jensen", "jensen"),
    ("van der Berg", "vanderberg"), ("Schmidt", "schmidt"), ("Yılmaz", "yilmaz"), ("Brown", "brown"),
    ("Łukasiewicz", "lukasiewicz"), ("Silva", "silva"), ("Chen", "chen"), ("Ødegaard", "odegaard"),
]
EMAIL_DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example.de", "example.co.uk"]

# country -> (currency, tax rates as decimal strings, cities, phone prefix)
COUNTRIES = {
    "US": ("USD", ["0.0825", "0.07", "0"], ["Springfield", "Austin", "Portland"], "1"),
    "CA": ("CAD", ["0.13", "0.05"], ["Toronto", "Montréal"], "1"),
    "GB": ("GBP", ["0.2", "0"], ["London", "Leeds", "Bristol"], "44"),
    "DE": ("EUR", ["0.19", "0.07"], ["Berlin", "München", "Köln"], "49"),
    "FR": ("EUR", ["0.2", "0.055"], ["Paris", "Lyon"], "33"),
    "NL": ("EUR", ["0.21", "0.09"], ["Amsterdam", "Utrecht"], "31"),
    "JP": ("JPY", ["0.1", "0.08"], ["東京", "Osaka"], "81"),
}
COUNTRY_WEIGHTS = {"US": 30, "CA": 5, "GB": 15, "DE": 20, "FR": 12, "NL": 8, "JP": 10}
STREETS = ["Main St", "High Street", "Hauptstraße", "Rue de la Paix", "Keizersgracht", "Oak Avenue", "銀座通り"]
REGIONS = {"US": ["TX", "OR", "IL"], "CA": ["ON", "QC"], "JP": ["Tokyo", "Osaka"]}

PRODUCTS = [
    ("SKU-1001", "Widget"), ("SKU-1002", "Widget Pro"), ("SKU-2001", "Gadget (blue)"), ("SKU-2002", "Gadget (red)"),
    ("SKU-3001", "Café crème 250g"), ("SKU-3002", "T-Shirt Größe M"), ("SKU-4001", "USB-C cable 2m"),
    ("SKU-4002", "Adapter — EU/UK"), ("SKU-5001", "Support plan (monthly)"), ("SKU-5002", "Setup fee"),
    ("SKU-6001", "Notebook A5"), ("SKU-6002", "和紙 notebook"), ("SKU-7001", "Gift card"), ("SKU-8001", "Shipping"),
]
TAGS = ["vip", "wholesale", "newsletter", "b2b", "late-payer", "beta", "partner", "churn-risk"]
META_SOURCES = ["web", "import-2017", "salesforce", "api", "pos", "partner-portal"]

ASCII_NOTES = [
    "Leave at the front desk.", "Call before delivery", "Invoice to accounts payable",
    "Repeat of last month's order", "Customer asked for \"express\" shipping\nand a receipt",
    "PO #4471\tdue net 30",
]
UNICODE_NOTES = [
    "Gift wrap please 🎁🎉",
    "请在周五前送达。谢谢！",
    "配達は午前中にお願いします",
    "배송 전에 전화 주세요",
    "يرجى التسليم بعد الظهر",
    "נא להשאיר ליד הדלת",
    "Cafe\u0301 order for Zoe\u0308 — deliver to the 2nd floor",
    "Family pack 👩\u200d👩\u200d👧 ✓ 🇩🇪",
    "Ünïcödé ÄÖÜ ß — «quotes» “curly” ‘single’",
    "mixed: שלום hello مرحبا 123",
]
EXTRA_FIELDS = [
    ("legacyImportId", "int"), ("importBatch", "str"), ("_source", "str"), ("oldStatus", "str"),
    ("flags", "obj"), ("syncState", "obj"), ("schemaVersion", "int"),
]
NON_NUMERIC_AMOUNTS = ["12,50", "abc", "", "N/A", "1.234,56", "--"]
FAILURE_CODES = ["card_declined", "insufficient_funds", "expired_card", "processing_error", "do_not_honor"]
CARD_BRANDS = ["visa", "mastercard", "amex", "discover"]
