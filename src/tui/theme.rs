//! Colours by role, for a dark or a light terminal, or none at all (`mono`, and always under
//! `NO_COLOR`). Views ask for a role ([`Theme::up`], [`Theme::dim`]...), never for a colour, so
//! a state always reads from its symbol and word too: colour only adds to it.

use ratatui::style::{Color, Modifier, Style};

pub use crate::settings::ThemeName;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub name: ThemeName,
}

impl Theme {
    pub fn new(name: ThemeName) -> Self {
        Theme { name }
    }

    /// `name`, or mono when `NO_COLOR` is set (to anything but the empty string).
    pub fn from_env(name: ThemeName, no_color: Option<&std::ffi::OsStr>) -> Self {
        match no_color {
            Some(v) if !v.is_empty() => Theme::new(ThemeName::Mono),
            _ => Theme::new(name),
        }
    }

    pub fn mono() -> Self {
        Theme::new(ThemeName::Mono)
    }

    fn color(self, dark: Color, light: Color) -> Style {
        match self.name {
            ThemeName::Dark => Style::default().fg(dark),
            ThemeName::Light => Style::default().fg(light),
            ThemeName::Mono => Style::default(),
        }
    }

    /// A tunnel that is up; a step that passed.
    pub fn up(self) -> Style {
        self.color(Color::Green, Color::Indexed(28))
    }
    /// Connecting, reconnecting; a warning.
    pub fn busy(self) -> Style {
        self.color(Color::Yellow, Color::Indexed(130))
    }
    /// Failed; an error.
    pub fn failed(self) -> Style {
        match self.name {
            ThemeName::Mono => Style::default().add_modifier(Modifier::BOLD),
            _ => self.color(Color::Red, Color::Indexed(160)),
        }
    }
    /// Down; sources, hints, secondary text.
    pub fn dim(self) -> Style {
        match self.name {
            ThemeName::Mono => Style::default(),
            _ => self.color(Color::DarkGray, Color::Indexed(244)),
        }
    }
    /// The title bar and links to act on.
    pub fn accent(self) -> Style {
        self.color(Color::Cyan, Color::Indexed(25))
            .add_modifier(Modifier::BOLD)
    }
    /// Column headers and section titles.
    pub fn header(self) -> Style {
        self.color(Color::Gray, Color::Indexed(238))
            .add_modifier(Modifier::BOLD)
    }
    /// The selected row (the cursor): a background a shade off the terminal's, bold; under
    /// mono, reversed. Its cells take [`Theme::on_cursor`].
    pub fn selected(self) -> Style {
        match self.name {
            ThemeName::Dark => Style::default()
                .bg(Color::Indexed(237))
                .add_modifier(Modifier::BOLD),
            ThemeName::Light => Style::default()
                .bg(Color::Indexed(254))
                .add_modifier(Modifier::BOLD),
            ThemeName::Mono => Style::default().add_modifier(Modifier::REVERSED),
        }
    }
    /// A cell's style on the cursor row. The dim grey of secondary text ("○ down", VIA,
    /// SOURCE) sinks into the cursor's grey background, so there it is drawn in the text
    /// colour that reads on it; other colours are kept. Mono reverses the whole row, which
    /// keeps every cell readable as it is.
    pub fn on_cursor(self, cell: Style) -> Style {
        let text = match self.name {
            ThemeName::Dark => Color::Gray,
            ThemeName::Light => Color::Indexed(236),
            ThemeName::Mono => return cell,
        };
        if cell.fg.is_some() && (cell.fg == self.dim().fg || cell.fg == self.selected().bg) {
            cell.fg(text)
        } else {
            cell
        }
    }
    /// The field with the cursor in a form.
    pub fn focus(self) -> Style {
        match self.name {
            ThemeName::Mono => Style::default().add_modifier(Modifier::REVERSED),
            _ => self.accent(),
        }
    }
    /// Bold, in every theme.
    pub fn strong(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    /// The status line.
    pub fn status(self) -> Style {
        self.color(Color::Gray, Color::Indexed(240))
    }
}
