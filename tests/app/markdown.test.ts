/**
 * Model output is untrusted: the Markdown renderer must keep it inert. Rendered in Node with
 * react-dom/server, the same component the answer, the reasoning and the evidence use.
 */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { Markdown } from '../../app/components/Markdown.tsx';

const render = (text: string) => renderToStaticMarkup(createElement(Markdown, { text }));

describe('Markdown (untrusted model output)', () => {
  it('shows raw HTML as text: no script, img, iframe or event handler element is created', () => {
    const html = render('Before <script>window.pwned = 1</script> and <img src=x onerror="window.pwned=2"> and <iframe src="https://evil.example"></iframe> after.');
    expect(html).not.toMatch(/<script|<img|<iframe/i);
    expect(html).not.toMatch(/<[^>]*\sonerror=/i); // only as escaped text, never an attribute
    expect(html).toContain('&lt;script&gt;window.pwned = 1&lt;/script&gt;');
    expect(html).toContain('&lt;img src=x onerror=');
  });

  it('empties javascript:, data: and vbscript: links; keeps safe links, opening without opener or referrer', () => {
    const html = render('[x](javascript:alert(1)) [y](data:text/html;base64,PHNjcmlwdD4=) [z](vbscript:msgbox) [ok](https://example.org/a)');
    expect(html).not.toMatch(/href="(javascript|data|vbscript):/i);
    expect(html).toContain('href="https://example.org/a"');
    expect(html).toContain('rel="noopener noreferrer nofollow"');
    expect(html).toContain('target="_blank"');
    expect((html.match(/<a /g) ?? []).length).toBe(4); // the unsafe ones stay as inert, href-less links
  });

  it('drops images (they would fetch from anywhere) but keeps the text formatting', () => {
    const html = render('![tracker](https://evil.example/pixel.png)\n\n**bold** and *em*, `code`\n\n- one\n- two\n\n## Heading');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('evil.example');
    expect(html).toContain('<strong>bold</strong>');
    expect(html).toContain('<em>em</em>');
    expect(html).toContain('<code>code</code>');
    expect(html).toContain('<li>one</li>');
    expect(html).toContain('<h2>Heading</h2>');
  });
});
