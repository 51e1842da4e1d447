"""English word lists: stop words (what lexical matching and the heuristic extractor skip),
months and weekdays, words that are not names, and keywords that type an entity. Plain data."""

from __future__ import annotations


def word_list(text: str) -> list[str]:
    """The whitespace-separated words of `text` (how word lists are written here)."""
    return text.split()


_FUNCTION_WORDS = """
a about above across after afterwards again against ago all almost alone along already also
although always am among an and another any anybody anyhow anyone anything anyway anywhere are
around as at be became because become becomes been before beforehand behind being below beside
besides between beyond both but by can cannot could did do does doing done down during each
either else elsewhere enough etc even ever every everybody everyone everything everywhere except
few for former formerly from further had has have having he hence her here hers herself him
himself his how however i if in indeed into is it its itself just least less many may me meanwhile
might mine more moreover most mostly much must my myself neither never nevertheless next no nobody
none nor not nothing now nowhere of off often on once one only onto or other others otherwise our
ours ourselves out over own per perhaps please quite rather same several she should since so some
somebody somehow someone something sometime sometimes somewhere still such than that the their
theirs them themselves then there thereby therefore these they this those though through
throughout thus to together too toward towards under until up upon us very via was we well were
what whatever when whenever where whereas wherever whether which while who whoever whole whom
whose why will with within without would yet you your yours yourself yourselves
im ive id ill youre youve youd youll hes shes its were weve theyre theyve dont doesnt didnt isnt
arent wasnt werent cant couldnt wont wouldnt shouldnt havent hasnt hadnt lets thats whats theres
heres whos
"""

_CHAT_WORDS = """
hey hi hello bye goodbye thanks thank thx wow oh ooh ah aw aww yeah yes yep yup no nope ok okay
sure hmm um uh lol omg btw haha hahaha yay whoa gee cheers congrats congratulations sorry please
really totally absolutely definitely exactly actually basically literally seriously honestly
probably maybe certainly surely truly simply pretty super so such kinda sorta gonna wanna gotta
lot lots bit thing things stuff way ways kind sort type time times day days week weeks month
months year years today tonight tomorrow yesterday morning evening night afternoon weekend
recently lately soon later earlier ago last first second new old good great nice cool awesome
amazing awesome fantastic wonderful lovely beautiful incredible fun happy glad sad excited
exciting interesting inspiring inspired special important big small little long short hard easy
best better worse worst real true right wrong sure able whole own different same other main
huge tiny glad proud grateful thankful stoked keen thrilled blessed lucky tough rough crazy
awful terrible perfect positive negative strong powerful helpful meaningful
feel feels felt feeling think thinks thought know knows knew known see sees saw seen seeing look
looks looked looking get gets got gotten getting go goes went gone going come comes came coming
make makes made making take takes took taken taking give gives gave given giving want wants
wanted say says said tell tells told ask asks asked try tries tried trying keep keeps kept let
love loves loved like likes liked liking enjoy enjoys enjoyed need needs needed use uses used
find finds found put puts mean means meant seem seems seemed sound sounds sounded hope hopes
hoped wish wished guess bet remember remembered forget forgot start started starting begin
began help helps helped helping talk talked talking share shared sharing glad appreciate
appreciated agree agreed happen happened happens check checked doing done did does been being
has have had having am is are was were be can could will would shall should may might must
image images photo photos picture pictures pic pics shares selfie people person persons guy guys
man men woman women girl girls boy boys walking standing sitting holding playing wearing smiling
posing showing lying learn learned express brings bring brought difference stay staying
near twice finally moment moments event events experience experiences motivated passionate
ate won fell read wrote ran swam bought caught taught sold met left lost sent spent built paid
slept held drove flew grew knew threw wore chose broke spoke woke sang drank rode hid led fed
sat stood understood became forgot signed
sister brother mom dad mum mother father aunt uncle cousin grandma grandpa coach
""".replace("awesome amazing awesome", "awesome amazing")

#: Lowercase words that are never (part of) a salient noun phrase or a name on their own.
STOPWORDS = frozenset(word_list(_FUNCTION_WORDS + _CHAT_WORDS))

MONTHS = word_list(
    "january february march april may june july august september october november december"
)
WEEKDAYS = word_list("monday tuesday wednesday thursday friday saturday sunday")

#: Capitalized words that are not names even in the middle of a sentence.
NOT_NAMES = frozenset(
    ["i", "i'm", "i've", "i'd", "i'll", "ok", "okay", "btw", "lol", "omg", "tv", "am", "pm"]
    + MONTHS
    + WEEKDAYS
    + [day[:3] for day in WEEKDAYS]
    + [day + "s" for day in WEEKDAYS]
)

#: Words that join the capitalized words of one name ("Bank of America", "Forno da Vila").
NAME_CONNECTORS = frozenset(
    word_list("of de da do dos das du la le van von der den del di y e and &")
)

#: Words before a name that make it a person.
PERSON_TITLES = frozenset(
    word_list(
        "dr dr. mr mr. mrs mrs. ms ms. prof prof. professor aunt uncle grandma grandpa granny "
        "grandmother grandfather cousin coach sister brother mom dad mother father"
    )
)

#: The last word of a name or phrase → entity type.
TYPE_KEYWORDS: dict[str, str] = {
    **dict.fromkeys(
        word_list(
            "club association company corp corporation inc ltd university college school "
            "academy institute foundation society team band church hospital clinic bank agency "
            "center centre library bakery restaurant cafe café shop store museum council "
            "ministry department office studio gallery charity organization organisation group "
            "network lab laboratory hotel bar pub gym theater theatre livraria forno"
        ),
        "organization",
    ),
    **dict.fromkeys(
        word_list(
            "city town village country state river lake mountain mountains park beach island "
            "islands street road avenue square bay coast sea ocean valley forest desert county "
            "province region district harbor harbour port trail canyon falls hill hills "
            "rua avenida praça largo ponta cidade cidades vila são santa santo"
        ),
        "geo",
    ),
    **dict.fromkeys(
        word_list(
            "party festival concert wedding marathon race conference trip vacation holiday camp "
            "parade ceremony graduation birthday anniversary tour match game competition "
            "tournament show exhibition fair meeting workshop class lesson session event "
            "retreat hike funeral reunion celebration contest recital performance interview"
        ),
        "event",
    ),
    **dict.fromkeys(
        word_list(
            "book novel painting guitar piano bike bicycle car phone camera computer laptop "
            "necklace ring bracelet shoes album song poster sculpture vase bowl kayak boat"
        ),
        "object",
    ),
}
