/**
 * The answer extractor on realistic outputs: FineMedLM-o1's Thought / Summarization text, "the
 * answer is (C)", option text instead of a letter, several letters mentioned (the final decision
 * wins), none at all, lower case, markdown, PubMedQA yes/no/maybe, and words that only look like
 * letters ("A 45-year-old", "I", "vitamin C", "B-cell", "E. coli").
 */
import { describe, expect, it } from 'vitest';
import { extractAnswer, extractLetter, type ExtractionMethod } from '../../../models/eval/extract.ts';

const BLOOD = { A: 'Macrocytic red blood cells', B: 'Hyperchromic red blood cells', C: 'Microcytic red blood cells', D: 'Bite cells' };
const PUBMED = { A: 'yes', B: 'no', C: 'maybe' };
const DRUGS = { A: 'Aspirin', B: 'Aspirin and clopidogrel', C: 'Warfarin', D: 'Heparin' };
const VITAMINS = { A: 'Vitamin A', B: 'Vitamin B12', C: 'Vitamin C', D: 'Vitamin D' };
const FIVE = { A: 'Ceftriaxone', B: 'Vancomycin', C: 'Metronidazole', D: 'Doxycycline', E: 'Azithromycin' };

interface Case {
  name: string;
  output: string;
  options: Record<string, string>;
  letter: string | null;
  method?: ExtractionMethod;
}

const CASES: Case[] = [
  // FineMedLM-o1's own format.
  {
    name: 'Thought / Summarization with "The answer is (C)"', options: BLOOD, letter: 'C', method: 'statement',
    output: '## Thought\n\nA Kozak mutation lowers beta-globin translation, so less haemoglobin per cell: the cells are small and pale. Macrocytosis (A) fits B12 deficiency, not thalassemia.\n\n## Summarization\n\nReduced beta-globin synthesis gives hypochromic, microcytic cells. The answer is (C).',
  },
  {
    name: 'bold headings, "**Answer:** C"', options: BLOOD, letter: 'C', method: 'statement',
    output: '**Thought**\nLet me weigh each option. A and B do not fit; D is seen in G6PD deficiency.\n**Summarization**\n**Answer:** C',
  },
  {
    name: 'several letters in the Thought, the Summarization decides', options: FIVE, letter: 'B', method: 'statement',
    output: '**Thought**\nA (ceftriaxone) covers the meningococcus. E is for atypicals. C treats anaerobes. D is for rickettsiae. But the MRSA risk points to vancomycin.\n**Summarization**\nThe final answer is B.',
  },
  {
    name: 'a changed mind: the last statement wins', options: BLOOD, letter: 'C', method: 'statement',
    output: '## Thought\nAt first the answer is A, since ... wait, that is for megaloblastic anaemia. Re-evaluating: the answer is C.\n## Summarization\nInitially I thought the answer is A, but the correct answer is C.',
  },
  {
    name: 'negation is not a statement ("the answer is not A")', options: BLOOD, letter: 'C', method: 'last-letter',
    output: 'The answer is not A, and B is unlikely too; it must be C.',
  },
  {
    name: 'summary opens with the letter and its text', options: BLOOD, letter: 'C', method: 'lead',
    output: '**Thought**\nThalassemia intermedia gives small cells.\n**Summarization**\nC. Microcytic red blood cells, because beta-globin is underproduced.',
  },
  {
    name: 'summary opens with a bold letter', options: FIVE, letter: 'E', method: 'lead',
    output: '**Thought**\nAtypical pneumonia in a young adult.\n**Summarization**\n**E**',
  },
  {
    name: 'summary opens with "(D)"', options: BLOOD, letter: 'D', method: 'lead',
    output: 'Thought: oxidative damage, Heinz bodies, splenic macrophages.\nSummarization: (D) Bite cells are expected after fava beans.',
  },
  {
    name: 'option text instead of a letter (statement)', options: BLOOD, letter: 'C', method: 'statement',
    output: '## Thought\nLess globin per cell.\n## Summarization\nThe answer is "Microcytic red blood cells".',
  },
  {
    name: 'option text only, no letter anywhere', options: BLOOD, letter: 'C', method: 'option-text',
    output: '**Thought**\nThe mutation reduces globin synthesis.\n**Summarization**\nThe smear would show microcytic red blood cells with target cells.',
  },
  {
    name: 'option text with other capitalisation and punctuation', options: DRUGS, letter: 'B', method: 'option-text',
    output: '**Summarization**\nDual antiplatelet therapy — ASPIRIN and Clopidogrel — for 12 months after the stent.',
  },
  {
    name: 'longest option text wins over the shorter one inside it', options: DRUGS, letter: 'B', method: 'option-text',
    output: '**Summarization**\nHe should continue aspirin and clopidogrel after the drug-eluting stent.',
  },
  {
    name: 'two options mentioned is ambiguous, falls through to null', options: BLOOD, letter: null, method: 'none',
    output: '**Summarization**\nThe smear may show microcytic red blood cells or macrocytic red blood cells.',
  },
  {
    name: 'the option the summary opens with, not the one it rejects', options: BLOOD, letter: 'C', method: 'lead',
    output: '**Summarization**\nMicrocytic red blood cells rather than macrocytic red blood cells are expected.',
  },
  {
    name: 'options differing only in punctuation: the one written as is (statement)', options: { A: 'O group and Rh+ve', B: 'O group and Rh-ve', C: 'AB group and Rh+ve' },
    letter: 'B', method: 'statement', output: '**Summarization**\nThe universal donor for red cells: the answer is O group and Rh-ve.',
  },
  {
    name: 'options differing only in punctuation: "< 135" vs "> 135" (mention)', options: { A: '< 135 mmol/L', B: '> 135 mmol/L', C: '< 100 mmol/L' },
    letter: 'A', method: 'option-text', output: '**Summarization**\nHyponatraemia is a sodium < 135 mmol/L.',
  },
  // PubMedQA yes / no / maybe.
  {
    name: 'PubMedQA: summary opens with "No,"', options: PUBMED, letter: 'B', method: 'lead',
    output: '## Thought\nThe UTC echo-types did not differ between groups after the run.\n## Summarization\nNo, type 1 diabetes did not alter the Achilles tendon response to a 10 km run.',
  },
  {
    name: 'PubMedQA: "the answer is yes"', options: PUBMED, letter: 'A', method: 'statement',
    output: '**Thought**\nThe odds ratio was 2.1 (95% CI 1.4-3.0).\n**Summarization**\nThe association is significant, so the answer is yes.',
  },
  {
    name: 'PubMedQA: "maybe" mentioned once', options: PUBMED, letter: 'C', method: 'option-text',
    output: '**Summarization**\nThe evidence is mixed; maybe, pending larger trials.',
  },
  {
    name: 'PubMedQA: "No significant difference" is not the option "no"', options: PUBMED, letter: 'A', method: 'statement',
    output: '**Summarization**\nNo significant difference in complications was found, so the answer is (A) yes: the procedure is safe.',
  },
  {
    name: 'PubMedQA: the letter form', options: PUBMED, letter: 'B', method: 'statement',
    output: '**Thought**\nNeither outcome improved.\n**Summarization**\nAnswer: B (no)',
  },
  // Statement forms.
  { name: 'lower-case "answer: c"', options: BLOOD, letter: 'C', method: 'statement', output: 'so the answer: c' },
  { name: '"the correct answer is b."', options: BLOOD, letter: 'B', method: 'statement', output: 'after weighing everything, the correct answer is b.' },
  { name: '"C is correct"', options: BLOOD, letter: 'C', method: 'statement', output: 'A and B describe other anaemias. C is correct.' },
  { name: '"option D is the best answer"', options: FIVE, letter: 'D', method: 'statement', output: 'Considering the tick bite and the rash, option D is the best answer here.' },
  { name: '"I would choose option E"', options: FIVE, letter: 'E', method: 'statement', output: 'Given the walking pneumonia, I would choose option E.' },
  { name: '\\boxed{B}', options: FIVE, letter: 'B', method: 'statement', output: 'Therefore the drug is $\\boxed{B}$' },
  { name: '"The answer is therefore (a)"', options: DRUGS, letter: 'A', method: 'statement', output: 'The answer is therefore (a), as monotherapy suffices.' },
  { name: '"Answer - D" with the option text after', options: BLOOD, letter: 'D', method: 'statement', output: 'Answer - D Bite cells' },
  { name: '"The answer is A." (A as a letter, not an article)', options: DRUGS, letter: 'A', method: 'statement', output: 'Monotherapy is enough here. The answer is A.' },
  {
    name: '"Answer: A patient ..." is not option A', options: FIVE, letter: 'B', method: 'option-text',
    output: 'Answer: A patient with MRSA risk factors should get vancomycin.',
  },
  {
    name: 'bold letter and text inside the statement', options: BLOOD, letter: 'C', method: 'statement',
    output: '**Summarization**\nThe correct answer is **C. Microcytic red blood cells**.',
  },
  { name: '"C is incorrect" is not a statement', options: BLOOD, letter: 'D', method: 'last-letter', output: 'C is incorrect here; (D) fits the oxidant injury.' },
  // Words that look like letters.
  {
    name: '"A 45-year-old" and "I" are not answers', options: FIVE, letter: null, method: 'none',
    output: 'A 45-year-old man presents with fever. I think this is a case of pneumonia, but I am not sure which drug.',
  },
  { name: '"vitamin C" is not option C', options: FIVE, letter: null, method: 'none', output: 'He was taking vitamin C and vitamin D supplements daily.' },
  { name: '"B-cell" and "E. coli" are not letters', options: FIVE, letter: null, method: 'none', output: 'A B-cell lymphoma with E. coli sepsis in an immunocompromised host.' },
  {
    name: 'vitamin options: the option text, not the naming word', options: VITAMINS, letter: 'B', method: 'option-text',
    output: '**Summarization**\nThe neuropathy with macrocytosis points to a deficiency of vitamin B12.',
  },
  // Fallbacks and nothing.
  {
    name: 'decision stated in the Thought only, summary restates facts', options: BLOOD, letter: 'C', method: 'reasoning-statement',
    output: '**Thought**\nThe answer is C, because less globin means smaller cells.\n**Summarization**\nThalassemia intermedia results from reduced globin synthesis.',
  },
  { name: 'the last standalone letter', options: BLOOD, letter: 'B', method: 'last-letter', output: 'Between A) and B), I lean to B' },
  { name: 'a cut-off Thought with no summary and no letter', options: BLOOD, letter: null, method: 'none', output: '## Thought\n\nThe Kozak sequence controls the start of translation, and a mutation there' },
  { name: 'a stand-in model telling a story', options: BLOOD, letter: null, method: 'none', output: 'Once upon a time, there was a little girl named Lily. She loved to play in the park.' },
  { name: 'empty output', options: BLOOD, letter: null, method: 'none', output: '' },
  { name: 'a letter outside the options', options: PUBMED, letter: null, method: 'none', output: 'The answer is (D).' },
];

describe('extractAnswer', () => {
  it('has at least 30 realistic cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
  });

  for (const c of CASES) {
    it(c.name, () => {
      const got = extractAnswer(c.output, c.options);
      expect(got.letter).toBe(c.letter);
      if (c.method) expect(got.method).toBe(c.method);
      expect(extractLetter(c.output, c.options)).toBe(c.letter);
    });
  }

  it('no options, no letter', () => {
    expect(extractAnswer('The answer is (C).', {})).toEqual({ letter: null, method: 'none' });
  });
});
