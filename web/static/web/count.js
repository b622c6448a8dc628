// A tweet's length as the server counts it (tweets/text.py: twitter-text's v3 rules), so the
// compose counter and the server never disagree: NFC, one line ending, every URL weighs
// `url_weight`, an emoji `default_weight`, and every other character its range's weight.
// The URL finder is the server's own regular expression, handed to the page in its config.

const EMOJI = /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u;

function urlRanges(text, rules, expressions) {
  if (!text.includes(".")) return [];
  const ranges = [];
  for (const match of text.matchAll(expressions.url)) {
    const [, , before, url, protocol, domain, , path] = match;
    const end = match.index + match[0].length;
    const start = end - url.length;
    if (protocol) {
      ranges.push([start, end]);
      continue;
    }
    // Without a protocol only ASCII domains count, and not after "-", "_", "." or "/".
    if (expressions.invalidBefore.test(before || "")) continue;
    let last = null;
    for (const ascii of domain.matchAll(expressions.asciiDomain)) {
      last = [start + ascii.index, start + ascii.index + ascii[0].length];
      ranges.push(last);
    }
    if (last && path) last[1] = end;
  }
  return ranges;
}

function characterWeight(codePoint, rules) {
  for (const [start, end, weight] of rules.ranges) {
    if (codePoint >= start && codePoint <= end) return weight;
  }
  return rules.default_weight;
}

/** A function counting a text's weighted length under `rules` (the page config's `counting`). */
export function makeCounter(rules) {
  const expressions = {
    url: new RegExp(rules.url, "gi"),
    invalidBefore: new RegExp(rules.url_invalid_before),
    asciiDomain: new RegExp(rules.ascii_domain, "gi"),
  };
  const graphemes = typeof Intl !== "undefined" && Intl.Segmenter
    ? new Intl.Segmenter("en", { granularity: "grapheme" }) : null;

  return function weightedLength(raw) {
    const text = raw.normalize("NFC").replace(/\r\n|\r/g, "\n");
    const urls = new Map(urlRanges(text, rules, expressions).map(([start, end]) => [start, end]));
    const emoji = new Map();
    if (graphemes) {
      for (const { segment, index } of graphemes.segment(text)) {
        if (EMOJI.test(segment)) emoji.set(index, index + segment.length);
      }
    }
    let weight = 0;
    for (let i = 0; i < text.length;) {
      if (urls.has(i)) {
        weight += rules.url_weight * rules.scale;
        i = urls.get(i);
      } else if (emoji.has(i)) {
        weight += rules.default_weight;
        i = emoji.get(i);
      } else {
        const codePoint = text.codePointAt(i);
        weight += characterWeight(codePoint, rules);
        i += codePoint > 0xffff ? 2 : 1;
      }
    }
    return Math.floor(weight / rules.scale);
  };
}
