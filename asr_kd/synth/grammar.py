"""A probabilistic grammar of WSJ-like newswire sentences.

The text is upper case, without punctuation (apostrophes stay inside words,
as in Kaldi's WSJ transcripts), numbers spelled out, 5 to 30 words a
sentence.  The grammar is built so that a recurrent LM can beat an n-gram:

- subject-verb number agreement across relative clauses and prepositional
  phrases whose nouns have the other number ("THE ANALYSTS WHO THE BANK HIRED
  LAST YEAR EXPECT ..." / "THE PRICE OF THE SHARES HAS ...");
- pronouns and possessives that agree in gender and number with an
  antecedent several words back ("MISSUS CLARK SAID SHE ... HER ...");
- one sector topic per sentence choosing the company names, nouns and verbs.

:func:`generate` is deterministic given the seed (it draws only from
``random.Random(seed)`` and walks word lists in their written order).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

MIN_WORDS, MAX_WORDS = 5, 30

# ---------------------------------------------------------------------------
# Lexicon.  Nouns are given in the singular ("*" marks a mass noun without a
# plural); verbs in the base form, irregular forms in IRREGULAR.

GENERIC_AGENTS = (
    "COMPANY FIRM GROUP UNIT SUBSIDIARY ANALYST INVESTOR TRADER OFFICIAL EXECUTIVE "
    "SHAREHOLDER MANAGER CONSULTANT ECONOMIST DIRECTOR PARTNER COMPETITOR RIVAL "
    "CUSTOMER SUPPLIER CREDITOR LAWYER BUYER SELLER ADVISER STRATEGIST ACCOUNTANT "
    "SPECIALIST PARTNERSHIP AUDITOR EMPLOYEE BOARD"
).split()

GENERIC_THINGS = (
    "PLAN PROPOSAL OFFER STAKE PROFIT LOSS PRICE SHARE STOCK CONTRACT AGREEMENT DEAL "
    "ORDER RESULT FORECAST ESTIMATE BUDGET MARKET VENTURE ACQUISITION MERGER DIVIDEND "
    "REVENUE* EARNINGS* DEBT* STRATEGY DECISION REPORT CHARGE COST OPERATION DIVISION "
    "BUSINESS PROGRAM PROJECT PRODUCT ASSET INVESTMENT POSITION BID INCOME* OUTLOOK "
    "DEMAND* GROWTH* MARGIN QUARTER PERIOD RECORD TREND CONCERN EFFORT PROBLEM OPPORTUNITY "
    "JOB SALARY RISK TARGET FACILITY EXPENSE PAYROLL INTEREST* BOND NOTE"
).split()

TOPICS: dict[str, dict[str, list[str]]] = {
    "banking": dict(
        agents="BANK LENDER BANKER THRIFT DEPOSITOR BORROWER REGULATOR EXAMINER TELLER".split(),
        things=("LOAN DEPOSIT MORTGAGE BRANCH RESERVE ACCOUNT PORTFOLIO CREDIT* "
                "INTEREST* BALANCE RATE CHECK FEE SAVINGS* WITHDRAWAL COLLATERAL* CHARTER VAULT").split(),
        verbs="LEND BORROW DEPOSIT LOAN FORECLOSE REFINANCE CHARGE".split(),
        adjs="FEDERAL COMMERCIAL TROUBLED SOLVENT INSURED REGIONAL RURAL MUTUAL NEW LARGE".split(),
        cores="BANCORP BANKSHARES FINANCIAL SAVINGS TRUST BANK".split(),
    ),
    "oil": dict(
        agents="PRODUCER REFINER DRILLER UTILITY GEOLOGIST SHIPPER WHOLESALER".split(),
        things=("REFINERY PIPELINE WELL RIG BARREL FIELD GASOLINE* FUEL CRUDE* "
                "RESERVE TANKER PLATFORM GALLON SUPPLY OUTPUT* REACTOR KEROSENE* DIESEL* QUOTA LEASE").split(),
        verbs="DRILL REFINE PUMP EXPLORE SHIP TRANSPORT EXTRACT".split(),
        adjs="OFFSHORE DOMESTIC NATURAL PETROLEUM HEAVY PROVEN SWEET SOUR COSTLY FOREIGN".split(),
        cores="PETROLEUM OIL ENERGY RESOURCES GAS EXPLORATION".split(),
    ),
    "tech": dict(
        agents="ENGINEER PROGRAMMER MAKER VENDOR DEVELOPER DESIGNER RESELLER".split(),
        things=("COMPUTER CHIP SEMICONDUCTOR SOFTWARE* NETWORK DEVICE PRINTER TERMINAL "
                "WORKSTATION PROCESSOR SYSTEM MEMORY* DISK MAINFRAME MODEM LICENSE KEYBOARD SCREEN CIRCUIT DISPLAY").split(),
        verbs="DESIGN SHIP LICENSE INSTALL UPGRADE COMPUTE CONNECT".split(),
        adjs="PERSONAL DIGITAL ELECTRONIC PORTABLE POWERFUL COMPATIBLE ADVANCED FAST NEW OPTICAL".split(),
        cores="SYSTEMS COMPUTER DATA ELECTRONICS TECHNOLOGIES SOFTWARE MICROSYSTEMS".split(),
    ),
    "autos": dict(
        agents="AUTOMAKER DEALER WORKER UNION MECHANIC DRIVER IMPORTER".split(),
        things=("CAR TRUCK VEHICLE ENGINE PLANT MODEL FACTORY TIRE PART WARRANTY "
                "SEDAN VAN INVENTORY REBATE BRAKE BUMPER WAGON SHOWROOM").split(),
        verbs="ASSEMBLE RECALL BUILD DRIVE STYLE MANUFACTURE REPAIR".split(),
        adjs="COMPACT LUXURY FOREIGN DETROIT JAPANESE USED SPORTY SMALL DOMESTIC NEW".split(),
        cores="MOTORS AUTOMOTIVE MOTOR TRUCKS".split(),
    ),
    "airlines": dict(
        agents="AIRLINE CARRIER PILOT PASSENGER ATTENDANT TRAVELER CONTROLLER".split(),
        things=("JET PLANE ROUTE FLIGHT FARE AIRPORT HUB TICKET AIRCRAFT* GATE "
                "SCHEDULE SEAT ENGINE FLEET RUNWAY TERMINAL CARGO* BAGGAGE*").split(),
        verbs="FLY SCHEDULE CANCEL SERVE LAND TICKET BOOK".split(),
        adjs="DISCOUNT NONSTOP INTERNATIONAL REGIONAL COMMERCIAL BUSY DOMESTIC CROWDED EMPTY DELAYED".split(),
        cores="AIRLINES AIR AVIATION AIRWAYS".split(),
    ),
    "retail": dict(
        agents="RETAILER SHOPPER CONSUMER MERCHANT CLERK CASHIER".split(),
        things=("STORE CHAIN MERCHANDISE* OUTLET MALL SALE CATALOG SUPERMARKET "
                "CLOTHING* TOY SHOE COUPON SHELF DRESS FURNITURE* APPLIANCE GROCERY").split(),
        verbs="DISCOUNT STOCK SHOP SPEND ADVERTISE REOPEN STORE".split(),
        adjs="HOLIDAY DISCOUNT SPECIALTY SUBURBAN UPSCALE CHEAP SEASONAL EXPENSIVE FASHIONABLE MODEST".split(),
        cores="STORES MART RETAIL".split(),
    ),
    "drugs": dict(
        agents="DOCTOR PHYSICIAN PATIENT RESEARCHER SCIENTIST NURSE HOSPITAL".split(),
        things=("DRUG MEDICINE TREATMENT VACCINE TRIAL LABORATORY PILL TEST "
                "THERAPY DISEASE PATENT COMPOUND CLINIC DOSE VIRUS SYMPTOM").split(),
        verbs="TEST PRESCRIBE TREAT CURE APPROVE STUDY PATENT".split(),
        adjs="MEDICAL CLINICAL GENERIC EXPERIMENTAL EFFECTIVE SAFE TOXIC CHRONIC APPROVED PROMISING".split(),
        cores="PHARMACEUTICALS LABORATORIES HEALTH MEDICAL".split(),
    ),
    "steel": dict(
        agents="STEELMAKER MANUFACTURER WORKER FOREMAN MILL SMELTER FABRICATOR".split(),
        things=("STEEL* FACTORY CHEMICAL PLASTIC MACHINE TOOL SHIPMENT CAPACITY* "
                "ALUMINUM* COPPER* FURNACE INGOT SHEET PIPE WIRE BEARING VALVE PUMP").split(),
        verbs="MANUFACTURE PRODUCE MELT PROCESS EXPORT IMPORT AUTOMATE".split(),
        adjs="INDUSTRIAL HEAVY RAW FINISHED SPECIALTY INTEGRATED IMPORTED STAINLESS DOMESTIC IDLE".split(),
        cores="STEEL INDUSTRIES CHEMICAL MANUFACTURING METALS".split(),
    ),
    "realty": dict(
        agents="BUILDER DEVELOPER TENANT LANDLORD CONTRACTOR ARCHITECT HOMEOWNER".split(),
        things=("HOME HOUSE APARTMENT OFFICE TOWER PROPERTY PROJECT LEASE RENT "
                "BUILDING SITE HOTEL CONDOMINIUM ACRE NEIGHBORHOOD MORTGAGE* WAREHOUSE").split(),
        verbs="BUILD RENT LEASE DEVELOP CONSTRUCT REOPEN APPRAISE".split(),
        adjs="RESIDENTIAL COMMERCIAL VACANT URBAN SUBURBAN LUXURY EMPTY AFFORDABLE DOWNTOWN NEW".split(),
        cores="REALTY PROPERTIES DEVELOPMENT HOMES CONSTRUCTION".split(),
    ),
    "media": dict(
        agents="BROADCASTER PUBLISHER VIEWER SUBSCRIBER ADVERTISER EDITOR REPORTER".split(),
        things=("STATION NEWSPAPER MAGAZINE CABLE* TELEPHONE SHOW BOOK AUDIENCE "
                "AD CIRCULATION* RATING LINE CHANNEL EPISODE SERIES MOVIE STUDIO").split(),
        verbs="BROADCAST PUBLISH AIR PRINT EDIT CARRY SPONSOR".split(),
        adjs="LOCAL NATIONAL WEEKLY DAILY PRIME POPULAR CABLE PUBLIC INDEPENDENT RIVAL".split(),
        cores="COMMUNICATIONS BROADCASTING PUBLISHING MEDIA TELEPHONE".split(),
    ),
    "insurance": dict(
        agents="INSURER UNDERWRITER AGENT POLICYHOLDER ADJUSTER BROKER ACTUARY".split(),
        things=("POLICY CLAIM PREMIUM COVERAGE* ANNUITY RISK LIABILITY RESERVE "
                "PAYMENT DAMAGE* LAWSUIT BENEFIT HURRICANE EARTHQUAKE DEDUCTIBLE SETTLEMENT").split(),
        verbs="INSURE COVER UNDERWRITE SETTLE PAY SUE REIMBURSE".split(),
        adjs="LIFE CASUALTY MEDICAL AUTO GROUP TERM UNINSURED COSTLY PENDING FUTURE".split(),
        cores="INSURANCE LIFE CASUALTY MUTUAL".split(),
    ),
    "government": dict(
        agents="LAWMAKER SENATOR CONGRESSMAN LEGISLATOR GOVERNOR REGULATOR AIDE".split(),
        things=("BILL BUDGET DEFICIT TAX TARIFF PROPOSAL COMMITTEE AGENCY "
                "LEGISLATION* REGULATION AMENDMENT LAW SUBSIDY ELECTION HEARING QUOTA SANCTION").split(),
        verbs="VOTE PASS VETO TAX REGULATE DEBATE ENACT".split(),
        adjs="FEDERAL REPUBLICAN DEMOCRATIC CONGRESSIONAL POLITICAL LEGISLATIVE PRESIDENTIAL BUDGETARY CONTROVERSIAL FISCAL".split(),
        cores=[],
    ),
    "markets": dict(
        agents="TRADER INVESTOR FUND BROKER DEALER SPECULATOR ARBITRAGER".split(),
        things=("BOND INDEX YIELD FUTURES* OPTION CONTRACT TREASURY* SECURITY "
                "VOLUME* RALLY PORTFOLIO CURRENCY DOLLAR GOLD* SILVER* PREMIUM SWAP").split(),
        verbs="TRADE INVEST HEDGE BUY SELL SHORT RALLY".split(),
        adjs="VOLATILE INSTITUTIONAL BULLISH BEARISH JITTERY HEAVY NERVOUS OVERSEAS CALM".split(),
        cores="SECURITIES CAPITAL INVESTMENTS PARTNERS HOLDINGS".split(),
    ),
    "food": dict(
        agents="FARMER GROWER BREWER PROCESSOR RANCHER BAKER RESTAURANT".split(),
        things=("CROP GRAIN* CORN* WHEAT* SOYBEAN BEEF* BEVERAGE BRAND "
                "SNACK CEREAL HARVEST* JUICE MEAT* COFFEE* SUGAR* COCOA* TOBACCO* CIGARETTE").split(),
        verbs="GROW HARVEST PROCESS BREW PACKAGE EXPORT FEED".split(),
        adjs="FROZEN FRESH ORGANIC AGRICULTURAL DRY RECORD DAIRY BUMPER ABUNDANT SCARCE".split(),
        cores="FOODS BRANDS FARMS BEVERAGE".split(),
    ),
    "rail": dict(
        agents="RAILROAD SHIPPER TRUCKER HAULER CONDUCTOR ENGINEER".split(),
        things=("TRAIN TRACK FREIGHT* CAR LOCOMOTIVE TERMINAL CONTAINER CARGO* YARD "
                "LINE TON SHIPMENT CORRIDOR TRUCK").split(),
        verbs="HAUL CARRY TRANSPORT LOAD UNLOAD MERGE LINK".split(),
        adjs="TRANSCONTINENTAL REGIONAL HEAVY EFFICIENT NORTHERN SOUTHERN".split(),
        cores="RAILROAD RAILWAY FREIGHT LINES".split(),
    ),
    "defense": dict(
        agents="CONTRACTOR SUBCONTRACTOR GENERAL ADMIRAL PLANNER".split(),
        things=("MISSILE FIGHTER BOMBER SUBMARINE TANK HELICOPTER WEAPON SATELLITE "
                "RADAR* SHIP ROCKET BASE ARSENAL").split(),
        verbs="ARM DEPLOY LAUNCH DEFEND ORDER EQUIP SUPPLY".split(),
        adjs="MILITARY STRATEGIC NUCLEAR NAVAL TACTICAL CLASSIFIED".split(),
        cores="DYNAMICS AEROSPACE DEFENSE AIRCRAFT".split(),
    ),
    "mining": dict(
        agents="MINER PROSPECTOR SMELTER EXPLORER GEOLOGIST".split(),
        things=("MINE ORE* GOLD* SILVER* COAL* URANIUM* NICKEL* DEPOSIT SHAFT OUNCE "
                "TON CLAIM QUARRY").split(),
        verbs="MINE DIG EXTRACT REFINE MELT SHIP".split(),
        adjs="RICH PROVEN UNDERGROUND OPEN REMOTE".split(),
        cores="MINING MINES MINERALS GOLD".split(),
    ),
}

# Verb classes used across topics.
TRANSITIVE = (
    "ACQUIRE BUY SELL OFFER REDUCE INCREASE RAISE CUT EXPAND CLOSE OPEN SUPPORT OPPOSE "
    "REVIEW APPROVE REJECT CONSIDER DEVELOP CONTROL OWN MANAGE FINANCE LAUNCH DELAY "
    "ANNOUNCE REPORT ESTIMATE RESTRUCTURE ELIMINATE PURCHASE REPLACE TRIM BOOST LOWER "
    "HALT RESUME SUSPEND EXTEND RENEW INTRODUCE MARKET TARGET CRITICIZE PROTECT "
    "ABANDON PROMOTE DISCLOSE SEEK HOLD MAKE TAKE ACCEPT ATTRACT AVOID BLOCK CHALLENGE "
    "COMPLETE CREATE DEFEND DELIVER DOUBLE ENCOURAGE FREEZE HANDLE IGNORE IMPROVE "
    "LIMIT LIST MONITOR NEGOTIATE OBTAIN PREPARE PROVIDE QUESTION RECEIVE RECORD "
    "REQUIRE RETAIN SETTLE SIGN SPLIT SUBMIT TRANSFER USE WIN LOSE LEAD RUN FIND"
).split()
SAYING = "SAY BELIEVE THINK ARGUE PREDICT WARN NOTE INSIST FEAR ACKNOWLEDGE CLAIM ASSERT REPORT ESTIMATE SUSPECT EXPLAIN".split()
INTRANSITIVE = (
    "RISE FALL CLIMB DECLINE DROP SLIP GAIN JUMP SOAR PLUNGE IMPROVE WEAKEN RECOVER "
    "SURGE EASE TUMBLE STABILIZE GROW SHRINK ADVANCE RETREAT REBOUND SLUMP SAG WIDEN "
    "NARROW DOUBLE FLUCTUATE EXPAND DETERIORATE"
).split()
CONTROL = "PLAN WANT HOPE INTEND EXPECT AGREE DECIDE REFUSE TRY NEED CONTINUE PROPOSE THREATEN PREFER PROMISE FAIL PLEDGE".split()

IRREGULAR = {  # base: (past, past participle)
    "BUY": ("BOUGHT", "BOUGHT"), "SELL": ("SOLD", "SOLD"), "CUT": ("CUT", "CUT"),
    "SAY": ("SAID", "SAID"), "THINK": ("THOUGHT", "THOUGHT"), "RISE": ("ROSE", "RISEN"),
    "FALL": ("FELL", "FALLEN"), "GROW": ("GREW", "GROWN"), "SHRINK": ("SHRANK", "SHRUNK"),
    "SEEK": ("SOUGHT", "SOUGHT"), "HOLD": ("HELD", "HELD"), "MAKE": ("MADE", "MADE"),
    "TAKE": ("TOOK", "TAKEN"), "LEND": ("LENT", "LENT"), "BUILD": ("BUILT", "BUILT"),
    "DRIVE": ("DROVE", "DRIVEN"), "FLY": ("FLEW", "FLOWN"), "SPEND": ("SPENT", "SPENT"),
    "BROADCAST": ("BROADCAST", "BROADCAST"), "PAY": ("PAID", "PAID"),
    "UNDERWRITE": ("UNDERWROTE", "UNDERWRITTEN"), "FEED": ("FED", "FED"),
    "FREEZE": ("FROZE", "FROZEN"), "SPLIT": ("SPLIT", "SPLIT"), "DIG": ("DUG", "DUG"),
    "LOAD": ("LOADED", "LOADED"),
    "SHORT": ("SHORTED", "SHORTED"), "COVER": ("COVERED", "COVERED"),
    "HIRE": ("HIRED", "HIRED"), "LEAVE": ("LEFT", "LEFT"), "JOIN": ("JOINED", "JOINED"),
    "RUN": ("RAN", "RUN"), "LEAD": ("LED", "LED"), "WIN": ("WON", "WON"),
    "LOSE": ("LOST", "LOST"), "FIND": ("FOUND", "FOUND"), "TELL": ("TOLD", "TOLD"),
}
DOUBLING = set("CUT DROP SLIP PLAN SHIP STOP TRIM JAM RUN WIN SHOP PLUG CONTROL SAG SPLIT "
               "SUBMIT DIG EQUIP".split())
NO_E_DROP = set("SEE AGREE".split())

IRREGULAR_PLURAL = {"CHAIRMAN": "CHAIRMEN", "SPOKESMAN": "SPOKESMEN",
                    "CONGRESSMAN": "CONGRESSMEN", "FOREMAN": "FOREMEN",
                    "CHAIRWOMAN": "CHAIRWOMEN", "SPOKESWOMAN": "SPOKESWOMEN",
                    "BUSINESSMAN": "BUSINESSMEN", "MAN": "MEN", "WOMAN": "WOMEN",
                    "FUTURES": "FUTURES", "SERIES": "SERIES", "SHELF": "SHELVES",
                    "CHILD": "CHILDREN", "FACTORY": "FACTORIES"}

MALE_FIRST = ("JOHN ROBERT JAMES WILLIAM RICHARD DAVID MICHAEL THOMAS CHARLES GEORGE JOSEPH "
              "EDWARD PAUL PETER DONALD KENNETH STEVEN RONALD GARY LARRY FRANK WALTER HENRY "
              "ARTHUR ROGER ALAN BRUCE DENNIS GERALD HAROLD JACK KEVIN MARTIN RAYMOND").split()
FEMALE_FIRST = ("MARY SUSAN LINDA BARBARA ELIZABETH PATRICIA NANCY KAREN CAROL MARGARET "
                "JUDITH SANDRA ANN JANE ELLEN DIANE JOAN KATHLEEN LAURA SARAH MARTHA HELEN "
                "RUTH ALICE CAROLYN DEBORAH SHARON JANET DOROTHY CYNTHIA").split()
SURNAMES = ("SMITH JOHNSON WILLIAMS BROWN JONES MILLER DAVIS WILSON ANDERSON TAYLOR MOORE "
            "MARTIN JACKSON THOMPSON WHITE HARRIS CLARK LEWIS ROBINSON WALKER YOUNG ALLEN "
            "KING WRIGHT SCOTT GREEN BAKER ADAMS NELSON HILL CAMPBELL MITCHELL ROBERTS "
            "CARTER PHILLIPS EVANS TURNER PARKER COLLINS EDWARDS STEWART MORRIS MURPHY "
            "COOK ROGERS MORGAN COOPER PETERSON REED BAILEY BELL KELLY HOWARD WARD COX "
            "RICHARDSON WOOD WATSON BROOKS BENNETT GRAY HUGHES PRICE SANDERS MYERS LONG "
            "ROSS FOSTER POWELL JENKINS PERRY RUSSELL SULLIVAN FISHER HENDERSON COLEMAN "
            "SIMMONS PATTERSON JORDAN REYNOLDS HAMILTON GRAHAM WALLACE WEST COLE HAYES "
            "GIBSON ELLIS STONE MASON KENNEDY WARREN DIXON BURNS GORDON SHAW HOLMES RICE "
            "HUNT BLACK PALMER MILLS GRANT FORD HUDSON FLEMING WEBER KLEIN SCHMIDT "
            "GOLDSTEIN COHEN FRIEDMAN KAPLAN LEVINE MORRISON BRADLEY HARPER WEAVER "
            "LAWRENCE ARMSTRONG CARPENTER FLETCHER DAWSON CHAPMAN SPENCER BARNES "
            "FRANKLIN HOFFMAN MEYER WAGNER BECKER SCHULTZ NEUMANN LANDAU O'BRIEN "
            "O'CONNOR MCDONALD MCCARTHY FITZGERALD GALLAGHER DOUGHERTY").split()

# Gendered role nouns: (male, female); generic roles are unmarked.
GENDERED_ROLES = [("CHAIRMAN", "CHAIRWOMAN"), ("SPOKESMAN", "SPOKESWOMAN"),
                  ("BUSINESSMAN", "BUSINESSWOMAN")]
ROLES = "PRESIDENT TREASURER ECONOMIST ANALYST DIRECTOR CONTROLLER FOUNDER SECRETARY".split()

PLACE_PREFIXES = ("AMERICAN PACIFIC NATIONAL FIRST UNITED CONTINENTAL ATLANTIC GENERAL "
                  "WESTERN SOUTHERN NORTHERN EASTERN INTERNATIONAL FEDERAL GLOBAL "
                  "TEXAS OHIO COLUMBIA DELTA SUMMIT PIONEER CENTURY LIBERTY MIDWEST "
                  "CAROLINA VIRGINIA JERSEY BOSTON CHICAGO DALLAS HOUSTON DENVER").split()
COMPANY_SUFFIXES = "CORPORATION INCORPORATED COMPANY GROUP".split()

# Agent nouns that name organisations: "THE LENDER SAID IT ...".  Other
# singular human nouns have unknown gender and are never pronoun antecedents.
ORG_AGENTS = set((
    "COMPANY FIRM GROUP UNIT SUBSIDIARY COMPETITOR RIVAL SUPPLIER CREDITOR PARTNERSHIP "
    "BOARD BANK LENDER THRIFT PRODUCER REFINER DRILLER UTILITY WHOLESALER SHIPPER MAKER "
    "VENDOR RESELLER AUTOMAKER DEALER UNION IMPORTER AIRLINE CARRIER RETAILER MERCHANT "
    "HOSPITAL STEELMAKER MANUFACTURER MILL SMELTER FABRICATOR BUILDER DEVELOPER "
    "CONTRACTOR BROADCASTER PUBLISHER ADVERTISER INSURER UNDERWRITER FUND BROKER "
    "PROCESSOR BREWER RESTAURANT RAILROAD HAULER SUBCONTRACTOR MINER"
).split())

ADVERBS = "ALSO RECENTLY STILL REPORTEDLY QUIETLY ALREADY GENERALLY USUALLY".split()
MANNER = "SHARPLY SLIGHTLY STEADILY MODESTLY SUBSTANTIALLY BRIEFLY".split()
CITIES = ("NEW YORK", "TOKYO", "LONDON", "CHICAGO", "WASHINGTON", "FRANKFURT", "HONG KONG",
          "LOS ANGELES", "DETROIT", "HOUSTON", "ZURICH", "PARIS", "TORONTO", "SEOUL")

WEEKDAYS = "MONDAY TUESDAY WEDNESDAY THURSDAY FRIDAY".split()
MONTHS = ("JANUARY FEBRUARY MARCH APRIL MAY JUNE JULY AUGUST SEPTEMBER OCTOBER "
          "NOVEMBER DECEMBER").split()
ORDINALS = "FIRST SECOND THIRD FOURTH".split()

ONES = ("ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN "
        "FOURTEEN FIFTEEN SIXTEEN SEVENTEEN EIGHTEEN NINETEEN").split()
TENS = "_ _ TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()


def number_words(n: int) -> list[str]:
    """Spell 0 <= n < 1000 as words ("ONE HUNDRED TWENTY FIVE")."""
    if n < 20:
        return [ONES[n]]
    if n < 100:
        return [TENS[n // 10]] + ([ONES[n % 10]] if n % 10 else [])
    rest = number_words(n % 100) if n % 100 else []
    return [ONES[n // 100], "HUNDRED"] + rest


def year_words(y: int) -> list[str]:
    """Spell a year 1950..1999 the way it is read ("NINETEEN EIGHTY SEVEN")."""
    return ["NINETEEN"] + number_words(y % 100)


# ---------------------------------------------------------------------------
# Inflection


def _ends_consonant_y(w: str) -> bool:
    return w.endswith("Y") and len(w) > 1 and w[-2] not in "AEIOU"


def plural(noun: str) -> str:
    if noun in IRREGULAR_PLURAL:
        return IRREGULAR_PLURAL[noun]
    if noun.endswith(("S", "X", "Z", "CH", "SH")):
        return noun + "ES"
    if _ends_consonant_y(noun):
        return noun[:-1] + "IES"
    return noun + "S"


def third_singular(verb: str) -> str:
    if verb.endswith(("S", "X", "Z", "CH", "SH", "O")):
        return verb + "ES"
    if _ends_consonant_y(verb):
        return verb[:-1] + "IES"
    return verb + "S"


def past(verb: str) -> tuple[str, str]:
    """(past, past participle)."""
    if verb in IRREGULAR:
        return IRREGULAR[verb]
    if verb.endswith("E"):
        p = verb + "D"
    elif _ends_consonant_y(verb):
        p = verb[:-1] + "IED"
    elif verb in DOUBLING:
        p = verb + verb[-1] + "ED"
    else:
        p = verb + "ED"
    return p, p


def gerund(verb: str) -> str:
    if verb.endswith("IE"):
        return verb[:-2] + "YING"
    if verb.endswith("E") and verb not in NO_E_DROP and not verb.endswith("EE"):
        return verb[:-1] + "ING"
    if verb in DOUBLING:
        return verb + verb[-1] + "ING"
    return verb + "ING"


@dataclass(frozen=True)
class Verb:
    base: str
    s3: str
    past: str
    pp: str
    ing: str

    def present(self, num: str) -> str:
        return self.s3 if num == "sg" else self.base


def make_verb(base: str) -> Verb:
    p, pp = past(base)
    return Verb(base, third_singular(base), p, pp, gerund(base))


@dataclass(frozen=True)
class Noun:
    sg: str
    pl: str | None  # None for a mass noun (always singular agreement)

    def form(self, num: str) -> str:
        return self.pl if (num == "pl" and self.pl) else self.sg


def make_noun(spec: str) -> Noun:
    if spec.endswith("*"):
        return Noun(spec[:-1], None)
    if spec in ("EARNINGS", "FUTURES"):
        return Noun(spec, None)
    return Noun(spec, plural(spec))


@dataclass
class Topic:
    name: str
    agents: list[Noun]
    things: list[Noun]
    verbs: list[Verb]
    adjs: list[str]
    companies: list[str]  # "PACIFIC PETROLEUM CORPORATION"


@dataclass
class Lexicon:
    topics: list[Topic]
    generic_agents: list[Noun]
    generic_things: list[Noun]
    transitive: list[Verb]
    saying: list[Verb]
    intransitive: list[Verb]
    control: list[Verb]


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The fixed lexicon (company names drawn from a fixed seed, not the caller's)."""
    rng = random.Random(12345)
    topics = []
    for name, spec in TOPICS.items():
        companies = []
        for core in spec["cores"]:
            prefixes = rng.sample(PLACE_PREFIXES, 3)
            for p in prefixes:
                companies.append(f"{p} {core}")
        # a few companies carry a suffix ("... CORPORATION")
        companies = [c + (" " + rng.choice(COMPANY_SUFFIXES) if rng.random() < 0.4 else "")
                     for c in companies]
        topics.append(Topic(
            name=name,
            agents=[make_noun(s) for s in spec["agents"]],
            things=[make_noun(s) for s in spec["things"]],
            verbs=[make_verb(v) for v in spec["verbs"]],
            adjs=list(spec["adjs"]),
            companies=companies,
        ))
    lex = Lexicon(
        topics=topics,
        generic_agents=[make_noun(s) for s in GENERIC_AGENTS],
        generic_things=[make_noun(s) for s in GENERIC_THINGS],
        transitive=[make_verb(v) for v in TRANSITIVE],
        saying=[make_verb(v) for v in SAYING],
        intransitive=[make_verb(v) for v in INTRANSITIVE],
        control=[make_verb(v) for v in CONTROL],
    )
    return lex


BE = {"sg": ("IS", "WAS"), "pl": ("ARE", "WERE")}
HAVE = {"sg": "HAS", "pl": "HAVE"}
DO = {"sg": "DOES", "pl": "DO"}
PRONOUN = {("sg", "m"): ("HE", "HIS", "HIM"), ("sg", "f"): ("SHE", "HER", "HER"),
           ("sg", "n"): ("IT", "ITS", "IT"), ("pl", "n"): ("THEY", "THEIR", "THEM"),
           ("pl", "m"): ("THEY", "THEIR", "THEM"), ("pl", "f"): ("THEY", "THEIR", "THEM"),
           ("sg", "x"): (None, "THE", None)}


# ---------------------------------------------------------------------------
# The grammar


@dataclass
class NP:
    words: list[str]
    num: str      # "sg" | "pl"
    gender: str   # "m" | "f" | "n"
    human: bool = False


class Grammar:
    """Sentence generator; one instance per random stream."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.lex = lexicon()

    # -- small helpers ---------------------------------------------------
    def p(self, prob: float) -> bool:
        return self.rng.random() < prob

    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def num(self, p_pl: float = 0.45) -> str:
        return "pl" if self.p(p_pl) else "sg"

    def other(self, num: str) -> str:
        return "sg" if num == "pl" else "pl"

    # -- numbers and times -----------------------------------------------
    def amount(self) -> list[str]:
        r = self.rng.random()
        if r < 0.5:
            return number_words(self.rng.randrange(1, 999)) + [self.pick(["MILLION", "BILLION"]), "DOLLARS"]
        if r < 0.75:
            return number_words(self.rng.randrange(2, 99)) + ["CENTS"] + (["A", "SHARE"] if self.p(0.5) else [])
        return number_words(self.rng.randrange(2, 150)) + ["DOLLARS"] + (["A", "SHARE"] if self.p(0.4) else [])

    def percent(self) -> list[str]:
        w = number_words(self.rng.randrange(0, 40))
        if self.p(0.5):
            w += ["POINT"] + number_words(self.rng.randrange(1, 10))
        return w + ["PERCENT"]

    def time(self) -> list[str]:
        r = self.rng.random()
        if r < 0.2:
            return ["YESTERDAY"]
        if r < 0.4:
            return ["LAST", self.pick(["YEAR", "WEEK", "MONTH", "QUARTER"])]
        if r < 0.6:
            return ["IN", "THE", self.pick(ORDINALS), "QUARTER"]
        if r < 0.75:
            return ["ON", self.pick(WEEKDAYS)]
        if r < 0.9:
            return ["IN", self.pick(MONTHS)]
        return ["IN"] + year_words(self.rng.randrange(1960, 1995))

    # -- noun phrases ----------------------------------------------------
    def det(self, num: str) -> list[str]:
        r = self.rng.random()
        if num == "sg":
            return ["THE"] if r < 0.7 else (["A"] if r < 0.85 else [self.pick(["THIS", "THAT", "ONE"])])
        return ["THE"] if r < 0.6 else ([] if r < 0.75 else [self.pick(["THESE", "THOSE", "SOME", "MANY", "SEVERAL", "MOST"])])

    def fix_article(self, words: list[str]) -> list[str]:
        if words and words[0] == "A" and len(words) > 1 and words[1][0] in "AEIOU":
            return ["AN"] + words[1:]
        return words

    def common_np(self, topic: Topic, num: str, agent: bool, adj_p: float = 0.3) -> NP:
        pool = topic.agents if agent else topic.things
        if self.p(0.3):
            pool = self.lex.generic_agents if agent else self.lex.generic_things
        noun = self.pick(pool)
        if noun.pl is None:
            num = "sg"
        words = self.det(num)
        if words == ["A"] and noun.pl is None:
            words = ["THE"]
        if self.p(adj_p):
            words = words + [self.pick(topic.adjs)]
        words = self.fix_article(words + [noun.form(num)])
        org = agent and noun.sg in ORG_AGENTS
        gender = "n" if (org or num == "pl" or not agent) else "x"
        return NP(words, num, gender, human=agent)

    def person(self, topic: Topic) -> NP:
        gender = "m" if self.p(0.55) else "f"
        first = self.pick(MALE_FIRST if gender == "m" else FEMALE_FIRST)
        last = self.pick(SURNAMES)
        r = self.rng.random()
        if r < 0.45:
            words = ["MISTER" if gender == "m" else "MISSUS", last]
        elif r < 0.8:
            words = [first, last]
        else:
            words = [first, last]
            role = self.role(gender)
            if topic.companies and self.p(0.6):
                words += [role, "OF", *self.pick(topic.companies).split()]
            else:
                words += ["THE", "COMPANY'S" if self.p(0.5) else "FIRM'S", role]
        return NP(words, "sg", gender, human=True)

    def role(self, gender: str) -> str:
        if self.p(0.5):
            pair = self.pick(GENDERED_ROLES)
            return pair[0] if gender == "m" else pair[1]
        return self.pick(ROLES)

    def company(self, topic: Topic) -> NP:
        if topic.companies and self.p(0.8):
            return NP(self.pick(topic.companies).split(), "sg", "n")
        if topic.name == "government":
            w = self.pick(["THE SENATE", "THE TREASURY", "THE FEDERAL RESERVE", "CONGRESS",
                           "THE WHITE HOUSE", "THE ADMINISTRATION", "THE COMMERCE DEPARTMENT"])
            return NP(w.split(), "sg", "n")
        return self.common_np(topic, "sg", agent=True)

    def subject(self, topic: Topic, num: str | None = None) -> NP:
        """A subject NP, possibly with an attractor (PP / relative clause)."""
        r = self.rng.random()
        if num is None and r < 0.2:
            return self.person(topic)
        if num is None and r < 0.35:
            return self.company(topic)
        num = num or self.num(0.5)
        head = self.common_np(topic, num, agent=self.p(0.7))
        return self.modify(topic, head)

    def modify(self, topic: Topic, head: NP) -> NP:
        """Post-modifiers whose nouns tend to have the other number (attractors)."""
        r = self.rng.random()
        other = self.other(head.num)
        if r < 0.3:  # prepositional phrase
            prep = self.pick(["OF", "AT", "FOR", "WITH", "IN", "FROM"])
            obj = self.common_np(topic, other if self.p(0.8) else head.num, agent=self.p(0.4), adj_p=0.2)
            head = NP(head.words + [prep] + obj.words, head.num, head.gender, head.human)
            if self.p(0.35):
                return self.modify(topic, head)
            return head
        if r < 0.45 and head.human:  # subject relative: verb agrees with the head
            rel = "WHO" if self.p(0.6) else "THAT"
            v = self.pick(self.lex.transitive + topic.verbs)
            obj = self.common_np(topic, other, agent=False, adj_p=0.1)
            return NP(head.words + [rel, v.present(head.num)] + obj.words, head.num, head.gender, head.human)
        if r < 0.65:  # object relative with an embedded subject of the other number
            rel = ("WHO" if head.human else "THAT") if self.p(0.7) else ""
            inner = self.common_np(topic, other, agent=True, adj_p=0.1)
            v = self.pick(self.lex.transitive + topic.verbs + [make_verb("HIRE"), make_verb("JOIN")])
            if self.p(0.5):
                vw = [v.present(inner.num)]
            else:
                vw = [v.past]
            tail = self.time() if self.p(0.4) else []
            words = head.words + ([rel] if rel else []) + inner.words + vw + tail
            return NP(words, head.num, head.gender, head.human)
        return head

    # -- verb phrases ----------------------------------------------------
    def object_np(self, topic: Topic) -> NP:
        np_ = self.common_np(topic, self.num(0.5), agent=self.p(0.2))
        if self.p(0.15):
            np_ = NP(np_.words + ["FOR"] + self.amount(), np_.num, "n")
        elif self.p(0.2):
            prep = self.pick(["OF", "FOR", "IN", "TO", "FROM"])
            np_ = NP(np_.words + [prep] + self.common_np(topic, self.num(), agent=self.p(0.5)).words, np_.num, "n")
        return np_

    def vp(self, topic: Topic, subj: NP, depth: int) -> list[str]:
        num, gender = subj.num, subj.gender
        subj_pron, poss, obj_pron = PRONOUN[(num, gender)]
        r = self.rng.random()
        if r < 0.35 and not subj.human:  # things: intransitive / copula / perfect
            r = 0.35 + 0.35 * self.rng.random()
        if r < 0.2 and depth < 2:  # reported speech with a coreferent pronoun
            v = self.pick(self.lex.saying)
            vw = [v.present(num)] if self.p(0.45) else [v.past]
            inner_subj = (NP([subj_pron], num, gender, subj.human) if subj_pron and self.p(0.65)
                          else self.subject(topic))
            that = ["THAT"] if self.p(0.5) else []
            return vw + that + inner_subj.words + self.vp(topic, inner_subj, depth + 1)
        if r < 0.35:  # control verb + infinitive, possessive agrees
            v = self.pick(self.lex.control)
            vw = [v.present(num)] if self.p(0.6) else [v.past]
            inf = self.pick(self.lex.transitive + topic.verbs)
            obj = self.object_np(topic).words
            if self.p(0.45):
                n = self.pick(topic.things + self.lex.generic_things)
                obj = [poss, n.form(self.num(0.4))]
            return vw + ["TO", inf.base] + obj
        if r < 0.5:  # intransitive with numbers
            v = self.pick(self.lex.intransitive)
            if self.p(0.5):
                vw = [v.present(num)]
            elif self.p(0.5):
                vw = [HAVE[num], v.pp]
            else:
                vw = [v.past]
            tail = self.percent() if self.p(0.5) else (["TO"] + self.amount() if self.p(0.5) else [])
            if not tail and self.p(0.6):
                tail = [self.pick(MANNER)]
            return vw + tail + (self.time() if self.p(0.4) else [])
        if r < 0.62:  # progressive / perfect / copula: is/are, has/have
            if self.p(0.5):
                v = self.pick(self.lex.transitive + topic.verbs)
                aux = BE[num][0] if self.p(0.7) else BE[num][1]
                return [aux, v.ing] + self.object_np(topic).words
            if self.p(0.5):
                v = self.pick(self.lex.transitive + topic.verbs)
                return [HAVE[num], v.pp] + self.object_np(topic).words
            aux = BE[num][0] if self.p(0.7) else BE[num][1]
            return [aux] + (["NOT"] if self.p(0.2) else []) + [self.pick(topic.adjs + ["PROFITABLE", "LIKELY", "CONFIDENT", "WORRIED"])]
        if r < 0.7:  # negation with do-support
            v = self.pick(self.lex.transitive + topic.verbs)
            return [DO[num], "NOT", v.base] + self.object_np(topic).words
        if r < 0.78 and subj.human:  # reflexive-ish possessive use
            v = self.pick(self.lex.transitive + topic.verbs)
            vw = [v.present(num)] if self.p(0.6) else [v.past]
            n = self.pick(topic.things + self.lex.generic_things)
            return vw + [poss, n.form(self.num(0.4))] + (["TO", "REDUCE", poss, "COSTS"] if self.p(0.2) else [])
        # plain transitive, present tense most of the time (agreement)
        v = self.pick(self.lex.transitive + topic.verbs)
        if self.p(0.6):
            vw = ([self.pick(ADVERBS)] if self.p(0.15) else []) + [v.present(num)]
        elif self.p(0.5):
            vw = [v.past]
        else:
            vw = ["WILL", v.base]
        tail = self.time() if self.p(0.3) else []
        if self.p(0.15):
            tail = ["IN", *self.pick(CITIES).split()] + tail
        return vw + self.object_np(topic).words + tail

    # -- sentences -------------------------------------------------------
    def financial(self, topic: Topic) -> list[str]:
        co = self.company(topic)
        r = self.rng.random()
        if r < 0.4:
            metric = self.pick(["NET INCOME", "PROFIT", "REVENUE", "SALES", "EARNINGS", "OPERATING PROFIT"]).split()
            plural_metric = metric[-1] in ("SALES", "EARNINGS")
            v = self.pick(self.lex.intransitive)
            verb = v.past if self.p(0.7) else HAVE["pl" if plural_metric else "sg"] + " " + v.pp
            intro = co.words + ["SAID", "ITS" if co.gender == "n" else PRONOUN[(co.num, co.gender)][1]] if self.p(0.6) else []
            return intro + metric + verb.split() + self.percent() + ["TO"] + self.amount() + self.time()
        if r < 0.7:
            v = self.pick(["ROSE", "FELL", "CLIMBED", "DROPPED", "SLIPPED", "GAINED"])
            small = number_words(self.rng.randrange(2, 99)) + ["CENTS"] if self.p(0.6) else (
                number_words(self.rng.randrange(1, 9)) + ["DOLLARS"])
            return ["SHARES", "OF"] + co.words + [v] + small + (
                ["TO"] + number_words(self.rng.randrange(2, 120)) + ["DOLLARS"] if self.p(0.6) else [])
        return co.words + ["REPORTED", "A", self.pick(["LOSS", "PROFIT", "GAIN"]), "OF"] + self.amount() + self.time()

    def sentence(self) -> list[str]:
        topic = self.pick(self.lex.topics)
        r = self.rng.random()
        if r < 0.15:
            words = self.financial(topic)
        else:
            subj = self.subject(topic)
            words = subj.words + self.vp(topic, subj, 0)
            pron = PRONOUN[(subj.num, subj.gender)][0]
            if pron and self.p(0.3):  # second clause, pronoun agreeing with the first subject
                second = NP([pron], subj.num, subj.gender, subj.human)
                words += [self.pick(["AND", "BUT"])] + second.words + self.vp(topic, second, 2)
            elif self.p(0.15):
                words += [self.pick(["ANALYSTS", "TRADERS", "OFFICIALS"]), "SAID"]
            if self.p(0.2):
                words = self.time() + words
        return words


def generate(n_words: int, seed: int) -> list[str]:
    """Sentences (strings) totalling at least ``n_words`` words."""
    g = Grammar(random.Random(seed))
    out, total = [], 0
    while total < n_words:
        s = sentence_within_limits(g)
        out.append(" ".join(s))
        total += len(s)
    return out


def sentence_within_limits(g: Grammar) -> list[str]:
    while True:
        s = g.sentence()
        if MIN_WORDS <= len(s) <= MAX_WORDS:
            return s


def generate_n(n_sentences: int, seed: int, exclude: set[str] | frozenset = frozenset()) -> list[str]:
    """``n_sentences`` distinct sentences, none of them in ``exclude``."""
    g = Grammar(random.Random(seed))
    out: list[str] = []
    seen = set(exclude)
    while len(out) < n_sentences:
        s = " ".join(sentence_within_limits(g))
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out
