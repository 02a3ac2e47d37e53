/** Always visible (fixed), as the design requires. */
export function Footer() {
  return (
    <footer className="footer" role="contentinfo">
      Not medical advice. Everything runs locally on your device.
    </footer>
  );
}
