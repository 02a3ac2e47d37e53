/**
 * Model output as Markdown, inert: react-markdown builds React elements (never innerHTML), raw
 * HTML in the text shows as literal text, `javascript:` and other unsafe URLs are emptied by its
 * URL transform, and only plain text elements are allowed: no images (they would fetch from
 * anywhere), no iframes, no forms. Links open in a new tab without an opener or referrer.
 */
import ReactMarkdown, { type Components } from 'react-markdown';

const ALLOWED = ['p', 'br', 'hr', 'em', 'strong', 'del', 'code', 'pre', 'blockquote', 'ul', 'ol', 'li', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'a'];

const components: Components = {
  a: ({ href, children }) => (
    <a href={href || undefined} target="_blank" rel="noopener noreferrer nofollow">
      {children}
    </a>
  ),
};

export function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown allowedElements={ALLOWED} unwrapDisallowed components={components}>
        {text}
      </ReactMarkdown>
    </div>
  );
}
