"""Words that never become labels: profanity, slurs and sexual terms (the word list drops them whatever
their source: captions, `keep` or the frequent-word fill). Extend with `data.wordlist.block`.

Lower-case single tokens (the word list's tokenizer splits on anything but letters). A starting list of
unambiguous terms, not an exhaustive one: LCS-558K's alt-text captions contain such words, and a
frequent-word fill of 50,000 words does too.
"""

from __future__ import annotations

BLOCKLIST = frozenset(
    """
    anal anus arse arsehole asshole assholes bastard bastards bitch bitches blowjob bollocks boner boob
    boobs bukkake bullshit chink clit clitoris cock cocks coon cum cumshot cunt cunts dick dickhead dicks
    dildo dyke ejaculate ejaculation fag faggot faggots fags fellatio fisting fuck fucked fucker fuckers
    fucking fucks gangbang gook handjob hentai homo jizz kike kinky masturbate masturbation milf motherfucker
    negro negroes nigga niggas nigger niggers nude nudes nudity orgasm orgy paedophile pedophile penis
    piss pissed porn porno pornography pube pubes pussy rape raped rapist retard retarded scrotum semen
    sex sexy shemale shit shits shitty slut sluts spic splooge tit tits titties tranny twat vagina
    vibrator wank wanker wetback whore whores xxx
    """.split()
)


def blocked(words: set[str] | frozenset[str] = frozenset()) -> frozenset[str]:
    """The blocklist plus `words` (lower-cased)."""
    return BLOCKLIST | {w.lower() for w in words}
