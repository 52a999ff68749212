function joinWords(words) {
  return words.join(' ');
}

module.exports = { joinWords };
