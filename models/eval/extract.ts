/**
 * The answer letter of a model's output to a multiple-choice question, or null when it gives none.
 *
 * The output is first made plain (markdown emphasis and backticks removed, accents folded), so
 * "**Answer:** **C**" reads "Answer: C". R is the text after the last Summarization heading when
 * that is non-empty, else the whole output. Precedence, the first rule that finds something wins:
 *
 *   1. statement: the LAST explicit answer statement in R: "the answer is (C)", "Answer: C",
 *      "final answer: c", "the correct option is C", "C is correct", "option C is the best answer",
 *      "I choose C", "\boxed{C}"; the letter may be lower-case, in parentheses or brackets.
 *      After the same cues an option's text counts too: "the answer is yes", "Answer: "Microcytic
 *      red blood cells"". Negations ("the answer is not A", "C is incorrect") are not statements.
 *   2. lead: R opens with a letter ("C.", "(C)", "C)", "C: ...", "**C**") or with an option's text
 *      ("No, type 1 diabetes does not ..."); a short option (one word such as yes/no/maybe) must be
 *      followed by punctuation there, so "No significant difference ..." is not "no".
 *   3. option-text: exactly one option's text is mentioned in R (whole words, case, punctuation and
 *      accents ignored; a mention inside a longer option's mention counts for the longer one only,
 *      and of options differing only in punctuation, "Rh+ve" and "Rh-ve", the one written as is).
 *      Two or more options mentioned is ambiguous and falls through.
 *   4. reasoning-statement: when R is the summary, rule 1 over the reasoning before it (the
 *      decision was stated in the Thought and the summary only restates facts).
 *   5. last-letter: the last standalone option letter anywhere: "(C)", "option C", or a bare
 *      capital letter that is not a word or a name. Not letters: "A" and "I" followed by a word
 *      ("A 45-year-old", "A B-cell lymphoma", "I think") unless the word starts their option's
 *      text; letters after vitamin/hepatitis/type/group/class/... ("vitamin C"); letters in words
 *      or hyphenations ("B-cell", "HbA"); abbreviations ("E. coli").
 *   Otherwise null.
 */
import { splitSummarization } from '../prompts.ts';

export type ExtractionMethod = 'statement' | 'lead' | 'option-text' | 'reasoning-statement' | 'last-letter' | 'none';

export interface Extraction {
  letter: string | null;
  method: ExtractionMethod;
}

/**
 * @example
 *   extractAnswer('**Thought**\nB is tempting, but...\n**Summarization**\nThe answer is (C).', { A: 'x', B: 'y', C: 'z' });
 *   // { letter: 'C', method: 'statement' }
 */
export function extractAnswer(output: string, options: Readonly<Record<string, string>>): Extraction {
  const letters = Object.keys(options).filter((l) => /^[A-Z]$/.test(l)).sort();
  if (letters.length === 0 || output.trim() === '') return { letter: null, method: 'none' };
  const opts = letters.map((letter) => ({ letter, ...optionMatcher(options[letter]!) })).filter((o) => o.words > 0);
  const ctx: Ctx = { letters: new Set(letters), opts };

  const text = plain(output);
  const split = splitSummarization(text);
  const inSummary = split.summary !== null && split.summary !== '';
  const region = inSummary ? split.summary! : text;

  const found =
    tag(lastStatement(region, ctx), 'statement') ??
    tag(lead(region, ctx), 'lead') ??
    tag(singleMention(region, ctx), 'option-text') ??
    (inSummary ? tag(lastStatement(split.reasoning, ctx), 'reasoning-statement') : null) ??
    tag(lastLetter(text, ctx), 'last-letter');
  return found ?? { letter: null, method: 'none' };
}

/** The letter alone (see extractAnswer). @example extractLetter('Answer: b', { A: 'x', B: 'y' }); // 'B' */
export function extractLetter(output: string, options: Readonly<Record<string, string>>): string | null {
  return extractAnswer(output, options).letter;
}

interface OptionMatcher {
  /** Matches the option's text anywhere, whole words, punctuation-insensitive (global). */
  re: RegExp;
  /** The plain, lower-cased text: breaks ties between options that differ only in punctuation ("Rh+ve", "Rh-ve"). */
  literal: string;
  /** Word count of the text. */
  words: number;
  /** One short word (yes, no, maybe): needs punctuation after it where a sentence could go on. */
  short: boolean;
}

interface Ctx {
  letters: Set<string>;
  opts: (OptionMatcher & { letter: string })[];
}

function tag(letter: string | null, method: ExtractionMethod): Extraction | null {
  return letter === null ? null : { letter, method };
}

/** Folds accents and drops markdown emphasis and code marks, which only decorate the answer. */
function plain(s: string): string {
  return s.normalize('NFKD').replace(/\p{M}/gu, '').replace(/\*+|__+|`+/g, '');
}

function optionMatcher(text: string): OptionMatcher {
  const words = plain(text).toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w !== '');
  const body = words.map(escapeRe).join('[^\\p{L}\\p{N}]+');
  return {
    re: new RegExp(`(?<![\\p{L}\\p{N}])${body}(?![\\p{L}\\p{N}])`, 'giu'),
    literal: plain(text).trim().toLowerCase(),
    words: words.length,
    short: words.length === 1 && words[0]!.length <= 6,
  };
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Words that may follow an answer (letter or short option text) in the same sentence. */
const CONTINUATION = /^\s+(?:because|since|as|which|given|with|option|choice|[-\u2013\u2014(])/i;
/** Punctuation or the end right after an answer. */
const CLOSED = /^(?:\s*$|\s*\n|[.,;:!?)\]}"'\u2019\u201d](?![\p{L}\p{N}])|\s+[-\u2013\u2014]\s)/u;

/** Cues after which the answer comes: "answer is", "answer:", "correct option is", "I choose". */
const CUE = new RegExp(
  [
    String.raw`\banswer(?:\s+(?:choice|option|letter))?(?:\s+to\s+(?:this|the)\s+question)?\s*(?:(?:is|would\s+be|should\s+be|will\s+be|must\s+be)\s*:?|[:=]|\s-)\s*`,
    String.raw`\b(?:correct|right|best|most\s+(?:likely|appropriate|accurate))\s+(?:option|choice|response)\s*(?:(?:is|would\s+be)\s*:?|[:=])\s*`,
    String.raw`\b(?:i\s+(?:would\s+)?(?:choose|select|pick|go\s+with)|i'll\s+(?:choose|go\s+with)|we\s+(?:choose|select))\s+`,
    String.raw`\\boxed\{\s*`,
  ].join('|'),
  'gi',
);
/** "C is correct", "option C is the best answer", "(C) would be the right choice". */
const LETTER_FIRST =
  /(?<![\p{L}\p{N}])(?:(?:option|choice)\s+)?(?:\(([A-Za-z])\)|([A-Z]))(?![\p{L}\p{N}'\u2019-])\s+(?:is|would\s+be|seems\s+to\s+be|appears\s+to\s+be)\s+(?:the\s+)?(?:(?:correct|right|best|most\s+(?:likely|appropriate|accurate)|final)(?:\s+(?:answer|option|choice|one))?|answer)\b/gu;

/** The answer right after a cue: a letter token or an option's text. */
function afterCue(rest: string, ctx: Ctx): string | null {
  rest = rest.replace(/^(?:therefore|thus|then|clearly|definitely|indeed|probably|(?:most\s+)?likely)[,\s]+/i, '');
  const m = /^(?:(?:option|choice|letter)\s+)?([([])?\s*([A-Za-z])(\s*[)\]])?/i.exec(rest);
  if (m) {
    const letter = m[2]!.toUpperCase();
    const follow = rest.slice(m[0].length);
    const marked = m[1] !== undefined || m[3] !== undefined;
    if (ctx.letters.has(letter) && letterFollows(m[2]!, follow, marked, ctx)) return letter;
  }
  return optionAt(rest.replace(/^["'\u2018\u201c(\s]+/, ''), ctx, true);
}

/** Whether what follows a letter makes it an answer letter rather than a word ("a viral ..."). */
function letterFollows(raw: string, follow: string, marked: boolean, ctx: Ctx): boolean {
  if (/^[-'\u2019/&]?[\p{L}\p{N}]/u.test(follow) || /^\.[\p{L}\p{N}]/u.test(follow)) return false; // "B-cell", "e.g."
  if (marked || CLOSED.test(follow) || CONTINUATION.test(follow)) return true;
  const letter = raw.toUpperCase();
  const own = ctx.opts.find((o) => o.letter === letter);
  if (own && startsWith(follow.trimStart(), own.re)) return true; // "C Microcytic red blood cells"
  return raw !== 'A' && raw !== 'I' && /^[A-Z]$/.test(raw); // a capital that is not a word
}

function startsWith(s: string, re: RegExp): boolean {
  re.lastIndex = 0;
  const m = re.exec(s);
  return m !== null && m.index === 0;
}

/**
 * The longest option whose text starts `s` (after punctuation such as "<" or a quote), followed by
 * punctuation where `strict` and it is short; of equally long ones, the one written literally.
 */
function optionAt(s: string, ctx: Ctx, strict: boolean): string | null {
  let best: { letter: string; len: number; literal: boolean } | null = null;
  const lower = s.toLowerCase();
  for (const o of ctx.opts) {
    o.re.lastIndex = 0;
    const m = o.re.exec(s);
    if (!m || /[\p{L}\p{N}]/u.test(s.slice(0, m.index))) continue;
    const follow = s.slice(m.index + m[0].length);
    if (strict && o.short && !CLOSED.test(follow) && !CONTINUATION.test(follow)) continue;
    const literal = lower.trimStart().startsWith(o.literal);
    if (!best || m[0].length > best.len || (m[0].length === best.len && literal && !best.literal)) best = { letter: o.letter, len: m[0].length, literal };
  }
  return best?.letter ?? null;
}

/** Rule 1: the answer of the last statement in `s`. */
function lastStatement(s: string, ctx: Ctx): string | null {
  let best: { at: number; letter: string } | null = null;
  for (const m of s.matchAll(CUE)) {
    const letter = afterCue(s.slice(m.index + m[0].length), ctx);
    if (letter && (!best || m.index >= best.at)) best = { at: m.index, letter };
  }
  for (const m of s.matchAll(LETTER_FIRST)) {
    const letter = (m[1] ?? m[2])!.toUpperCase();
    if (ctx.letters.has(letter) && (!best || m.index >= best.at)) best = { at: m.index, letter };
  }
  return best?.letter ?? null;
}

/** Rule 2: a letter or an option's text opening the region. */
function lead(s: string, ctx: Ctx): string | null {
  const t = s.trimStart().replace(/^(?:#{1,6}\s*)?(?:(?:final\s+)?answer\s*:\s*)?/i, '');
  const m = /^(?:(?:option|choice)\s+)?(?:\(([A-Za-z])\)|([A-Z])(?:\)|(?=[.:,](?:\s|$))|(?=\s*$)|(?=\s*\n)|(?=\s+[-\u2013\u2014]\s)))/.exec(t);
  if (m) {
    const letter = (m[1] ?? m[2])!.toUpperCase();
    if (ctx.letters.has(letter)) return letter;
  }
  const own = /^([A-Z])\s+/.exec(t); // "C Microcytic red blood cells"
  if (own && ctx.letters.has(own[1]!)) {
    const o = ctx.opts.find((x) => x.letter === own[1]);
    if (o && startsWith(t.slice(own[0].length), o.re)) return own[1]!;
  }
  return optionAt(t.replace(/^["'\u2018\u201c(]+/, ''), ctx, true);
}

/** Rule 3: the only option whose text is mentioned (longer mentions absorb the shorter ones inside them). */
function singleMention(s: string, ctx: Ctx): string | null {
  const spans: { letter: string; start: number; end: number; literal: boolean }[] = [];
  const lower = s.toLowerCase();
  for (const o of ctx.opts) {
    o.re.lastIndex = 0; // matchAll starts where the last exec() left the regex
    for (const m of s.matchAll(o.re)) {
      const near = lower.slice(Math.max(0, m.index - 3), m.index + m[0].length + 3);
      spans.push({ letter: o.letter, start: m.index, end: m.index + m[0].length, literal: near.includes(o.literal) });
    }
  }
  const absorbs = (b: (typeof spans)[number], a: (typeof spans)[number]) => b.letter !== a.letter && b.start <= a.start && b.end >= a.end &&
    (b.end - b.start > a.end - a.start || (b.start === a.start && b.end === a.end && b.literal && !a.literal));
  const kept = spans.filter((a) => !spans.some((b) => absorbs(b, a)));
  const distinct = new Set(kept.map((k) => k.letter));
  return distinct.size === 1 ? [...distinct][0]! : null;
}

/** Words before a capital letter that make it a name, not an option ("vitamin C", "type B"). */
const NAMING_WORD = /\b(?:vitamins?|hepatitis|type|group|class|grade|stage|factor|phase|lead|zone|cluster|schedule|protein|complex|category|level|site|chain|region|antigen|serotype|subtype|strep|influenza|ha?emophilia|coenzyme|immunoglobulin|plan|part|step|appendix|figure|table|section|list)\s+$/i;

/** Rule 5: the last standalone option letter. */
function lastLetter(s: string, ctx: Ctx): string | null {
  let last: string | null = null;
  const re = /(?<![\p{L}\p{N}'\u2019\-/.&])(\(\s*([A-Za-z])\s*\)|\[\s*([A-Za-z])\s*\]|([A-Z]))(?![\p{L}\p{N}'\u2019&]|-[\p{L}\p{N}])/gu;
  for (const m of s.matchAll(re)) {
    const letter = (m[2] ?? m[3] ?? m[4])!.toUpperCase();
    if (!ctx.letters.has(letter)) continue;
    const before = s.slice(Math.max(0, m.index - 24), m.index);
    const after = s.slice(m.index + m[0].length);
    const named = /\b(?:option|choice|answer|letter)\s+$/i.test(before);
    if (m[4] !== undefined && !named) {
      if (NAMING_WORD.test(before)) continue;
      if (/^\.\s*[a-z]|^\.[A-Za-z]/.test(after)) continue; // "E. coli", "U.S."
      // "A 45-year-old", "A B-cell lymphoma", "I think"; but "A Macrocytic red blood cells" is option A.
      const own = ctx.opts.find((o) => o.letter === letter);
      if ((letter === 'A' || letter === 'I') && /^\s+[\p{L}\p{N}]/u.test(after) && !(own && startsWith(after.trimStart(), own.re))) continue;
    }
    last = letter;
  }
  return last;
}
